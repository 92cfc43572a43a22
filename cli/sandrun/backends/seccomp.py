"""A seccomp filter for bubblewrap's `--seccomp FD`, built in pure Python.

The result is a classic-BPF program: an array of `struct sock_filter` {u16 code; u8 jt; u8 jf; u32 k} in the
host's byte order, which bubblewrap installs (with no_new_privs) just before it execs the sandboxed command.

Policy, on top of the namespaces bubblewrap already unshares:

- A syscall made under another ABI than the one the filter was built for (e.g. i386 via `int 0x80`, or the
  x32 ABI on x86_64) kills the process: the numbers below would mean something else there.
- `DENIED_SYSCALLS` fail with EPERM: debugging other processes, mounting, entering or creating namespaces,
  the kernel keyring, eBPF, perf, loading kernels or modules, userfaultfd, io_uring (its operations, sockets
  included, are not seen by seccomp), and opening files by handle.
- `clone3` fails with ENOSYS: its flags sit in memory where BPF cannot read them, and glibc falls back to
  `clone` on ENOSYS, whose flags (first argument on both arches) are checked for namespace creation.
- Where the sandbox has no memory cgroup, `UNACCOUNTED_MEMORY_SYSCALLS` fail with EPERM: memory behind a
  fd (`memfd_create`, `memfd_secret`) or in SysV IPC (`shmget`, `msgget`) escapes `RLIMIT_AS`.
- Without network, `socket` accepts only AF_UNIX and AF_NETLINK (routing info about the sandbox's own empty
  network namespace, which getaddrinfo/getifaddrs query); any other family fails with EAFNOSUPPORT. An
  allowlist rather than blocking AF_INET/AF_INET6 only: families like AF_VSOCK are not confined by the network
  namespace and can reach a hypervisor host. `socketpair` is left alone (only AF_UNIX supports it).
- Everything else is allowed.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct sock_filter, native byte order, no padding (8 bytes).
SOCK_FILTER = struct.Struct("=HBBI")

BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = seccomp_data[k:k+4]
BPF_JMP_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JMP_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K (unsigned)
BPF_JMP_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K: jump if A & k
BPF_RET_K = 0x06  # BPF_RET | BPF_K
BPF_MAXINSNS = 4096

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
SECCOMP_DATA_ARG0_LO = 16  # low half of args[0]; both supported arches are little-endian

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000
NO_SYSCALL = 0xFFFFFFFF  # nr -1, which a tracer sets to skip a syscall; the kernel answers ENOSYS

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
# CLONE_NEWTIME (0x80) is left out: in clone()'s flags that bit belongs to the exit signal.
CLONE_NAMESPACES = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)

AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16

ARCHES: dict[str, int] = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}

# Syscall numbers as name: (x86_64, aarch64). aarch64 uses the asm-generic table; numbers from 424 up are
# shared by all arches.
SPECIAL_SYSCALLS: dict[str, tuple[int, int]] = {"clone": (56, 220), "clone3": (435, 435), "socket": (41, 198)}
"""Syscalls whose fate depends on their arguments or that get another errno than EPERM."""

DENIED_SYSCALLS: dict[str, tuple[int, int]] = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "move_mount": (429, 429),
    "open_tree": (428, 428),
    "mount_setattr": (442, 442),
    "unshare": (272, 97),
    "setns": (308, 268),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "open_by_handle_at": (304, 265),
}
"""Syscalls that always fail with EPERM inside the sandbox."""

UNACCOUNTED_MEMORY_SYSCALLS: dict[str, tuple[int, int]] = {
    "memfd_create": (319, 279),
    "memfd_secret": (447, 447),
    "shmget": (29, 194),
    "msgget": (68, 186),
}
"""Syscalls that pin memory no `RLIMIT_AS` counts (behind a fd, or in SysV IPC that outlives its process):
they fail with EPERM when the sandbox has no memory cgroup to count them (`refuse_unaccounted_memory`)."""

_Insn = tuple[int, int | str, int | str, int]
"""(code, jt, jf, k) where a jump may name a label further down instead of giving an offset."""


def normalize_arch(arch: str | None = None) -> str:
    """The canonical name (`x86_64` or `aarch64`) of `arch`, or of this machine when None.

    Raises ValueError for an architecture there is no syscall table for.
    """
    name = (arch or platform.machine()).lower()
    name = _ARCH_ALIASES.get(name, name)
    if name not in ARCHES:
        raise ValueError(f"no seccomp syscall table for architecture {name!r} (known: {', '.join(ARCHES)})")
    return name


def build_filter(
    *,
    allow_network: bool,
    arch: str | None = None,
    loopback: bool = False,
    refuse_unaccounted_memory: bool = False,
) -> bytes:
    """The BPF program for `arch` (default: this machine), ready to hand to `bwrap --seccomp FD`.

    Kills foreign-ABI syscalls, refuses `DENIED_SYSCALLS` with EPERM, `clone3` with ENOSYS and `clone` with
    namespace flags with EPERM; when `allow_network` is False, `socket` of any family but AF_UNIX and
    AF_NETLINK fails with EAFNOSUPPORT (`loopback` also allows AF_INET and AF_INET6: in a network namespace
    of its own, they reach only the sandbox's loopback); when `refuse_unaccounted_memory` is True, the
    `UNACCOUNTED_MEMORY_SYSCALLS` fail with EPERM. Everything else is allowed.
    """
    arch = normalize_arch(arch)
    column = list(ARCHES).index(arch)
    denied = {**DENIED_SYSCALLS, **(UNACCOUNTED_MEMORY_SYSCALLS if refuse_unaccounted_memory else {})}
    nr = {name: numbers[column] for name, numbers in {**SPECIAL_SYSCALLS, **denied}.items()}

    prog: list[_Insn | str] = [
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        (BPF_JMP_JEQ_K, 0, "kill", ARCHES[arch]),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ]
    if arch == "x86_64":
        prog += [
            (BPF_JMP_JGE_K, 0, "native", X32_SYSCALL_BIT),
            (BPF_JMP_JEQ_K, "allow", "kill", NO_SYSCALL),
            "native",
        ]
    prog += [
        (BPF_JMP_JEQ_K, "enosys", 0, nr["clone3"]),
        (BPF_JMP_JEQ_K, "clone", 0, nr["clone"]),
    ]
    if not allow_network:
        prog.append((BPF_JMP_JEQ_K, "socket", 0, nr["socket"]))
    prog += [(BPF_JMP_JEQ_K, "eperm", 0, nr[name]) for name in denied]
    prog += [
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        "clone",
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG0_LO),
        (BPF_JMP_JSET_K, "eperm", "allow", CLONE_NAMESPACES),
    ]
    if not allow_network:
        prog += [
            "socket",
            (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG0_LO),
            (BPF_JMP_JEQ_K, "allow", 0, AF_UNIX),
            *[(BPF_JMP_JEQ_K, "allow", 0, family) for family in ((AF_INET, AF_INET6) if loopback else ())],
            (BPF_JMP_JEQ_K, "allow", "eafnosupport", AF_NETLINK),
            "eafnosupport",
            (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT),
        ]
    prog += [
        "allow",
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        "eperm",
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
        "enosys",
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        "kill",
        (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
    ]
    return _assemble(prog)


def _assemble(prog: list[_Insn | str]) -> bytes:
    """Encode `prog`, whose string items are labels, resolving jumps to labels into offsets."""
    labels: dict[str, int] = {}
    insns: list[_Insn] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)
    if len(insns) > BPF_MAXINSNS:
        raise ValueError(f"seccomp program too long: {len(insns)} instructions")

    def offset(here: int, jump: int | str) -> int:
        target = jump if isinstance(jump, int) else labels[jump] - here - 1
        if not 0 <= target <= 255:
            raise ValueError(f"jump at instruction {here} out of range: {target}")
        return target

    return b"".join(
        SOCK_FILTER.pack(code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(insns)
    )
