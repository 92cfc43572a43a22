"""``python fs_tool.py ROOT COMMAND_JSON``: the fake's stand-in for ``/__modal/.bin/modal-sandbox-fs-tools``.

``Sandbox.filesystem`` execs that binary with a JSON command (``modal/_utils/sandbox_fs_utils.py``). This
does ``WriteFile``, ``ReadFile`` and ``MakeDirectory`` with sandbox paths under ROOT; errors exit 1.
"""

import json
import sys
from pathlib import Path

KINDS = {FileNotFoundError: "NotFound", FileExistsError: "AlreadyExists", IsADirectoryError: "IsDirectory"}


def main(root: str, command_json: str) -> int:
    """Run one command (``{"WriteFile": {"path": ...}}``, ...) and return the exit code."""
    ((op, args),) = json.loads(command_json).items()
    path = Path(root) / str(args["path"]).lstrip("/")
    try:
        if op == "WriteFile":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sys.stdin.buffer.read())
        elif op == "ReadFile":
            sys.stdout.buffer.write(path.read_bytes())
        elif op == "MakeDirectory":
            path.mkdir(parents=args.get("parents", True), exist_ok=args.get("parents", True))
        else:
            raise NotImplementedError(f"the fake fs tool does not implement {op}")
    except (OSError, NotImplementedError) as exc:
        json.dump({"error_kind": KINDS.get(type(exc), "Other"), "message": str(exc)}, sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
