//! The program in every demo image: a static Linux executable of a few hundred bytes that
//! prints its banner and then waits for ever (so `docker run` shows the banner and the
//! container stays up), or, given any argument (the image's health check runs it with
//! `health`), exits 0 at once.
//!
//! Demo images have no shell and no libc, and Slipway must not need a cross toolchain or
//! ship a binary blob to make them, so the two executables (linux/amd64 and linux/arm64)
//! are assembled here by hand: one ELF header, one loadable segment, a dozen instructions
//! and the banner after them. The tests run both: amd64 natively, arm64 under
//! qemu-user-static, and check the instructions with llvm-mc's disassembler.

/// Where the segment is loaded; the entry point follows the two headers.
const BASE: u64 = 0x40_0000;
const ELF_HEADER: usize = 64;
const PROGRAM_HEADER: usize = 56;
const ENTRY: u64 = BASE + (ELF_HEADER + PROGRAM_HEADER) as u64;
/// The longest banner: it must fit the instructions' 16-bit (arm64) length field.
pub const MAX_BANNER: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn parse(arch: &str) -> Option<Arch> {
        match arch {
            "amd64" => Some(Arch::Amd64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// ELF `e_machine`.
    fn machine(self) -> u16 {
        match self {
            Arch::Amd64 => 62,
            Arch::Arm64 => 183,
        }
    }
}

/// The executable for `arch` that prints `banner` (cut at `MAX_BANNER` bytes).
pub fn executable(arch: Arch, banner: &str) -> Vec<u8> {
    let banner = &banner.as_bytes()[..banner.len().min(MAX_BANNER)];
    let code = match arch {
        Arch::Amd64 => amd64(banner.len() as u32),
        Arch::Arm64 => arm64(banner.len() as u32),
    };
    let size = (ELF_HEADER + PROGRAM_HEADER + code.len() + banner.len()) as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V; an executable.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&arch.machine().to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&ENTRY.to_le_bytes());
    elf.extend_from_slice(&(ELF_HEADER as u64).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&(ELF_HEADER as u16).to_le_bytes());
    elf.extend_from_slice(&(PROGRAM_HEADER as u16).to_le_bytes());
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    // One PT_LOAD segment, readable and executable, holding the whole file.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    elf.extend_from_slice(&code);
    elf.extend_from_slice(banner);
    elf
}

/// x86-64: write(1, banner, len) then pause() for ever; with an argument, exit(0).
fn amd64(len: u32) -> Vec<u8> {
    let mut code = vec![
        0x48, 0x8b, 0x04, 0x24, // mov rax, [rsp]        (argc)
        0x48, 0x83, 0xf8, 0x01, // cmp rax, 1
        0x75, 0x21, // jne exit                          (+33: to offset 43)
        0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1      (write)
        0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1      (stdout)
        0x48, 0x8d, 0x35, 0x19, 0x00, 0x00, 0x00, // lea rsi, [rip + 25] (the banner, at 52)
        0xba, // mov edx, len
    ];
    code.extend_from_slice(&len.to_le_bytes());
    code.extend_from_slice(&[
        0x0f, 0x05, // syscall
        0xb8, 0x22, 0x00, 0x00, 0x00, // wait: mov eax, 34 (pause)
        0x0f, 0x05, // syscall
        0xeb, 0xf7, // jmp wait                          (-9: to offset 34)
        0xb8, 0x3c, 0x00, 0x00, 0x00, // exit: mov eax, 60 (exit)
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
    ]);
    debug_assert_eq!(code.len(), 52);
    code
}

/// AArch64: the same with write (64), ppoll(NULL, 0, NULL, NULL) (73) and exit (93).
fn arm64(len: u32) -> Vec<u8> {
    let movz = |register: u32, value: u32| 0xd280_0000 | (value << 5) | register;
    // ADR: a PC-relative address, its byte offset split into low and high bits.
    let adr = |register: u32, offset: u32| 0x1000_0000 | ((offset & 3) << 29) | ((offset >> 2) << 5) | register;
    let instructions = [
        0xf940_03e0,                                // 0: ldr x0, [sp]        (argc)
        0xf100_041f,                                // 1: cmp x0, #1
        0x5400_0000 | (13 << 5) | 1,                // 2: b.ne exit (+13 instructions: to 15)
        movz(0, 1),                                 // 3: mov x0, #1          (stdout)
        adr(1, 56),                                 // 4: adr x1, banner (+56 bytes: at 72)
        movz(2, len),                               // 5: mov x2, #len
        movz(8, 64),                                // 6: mov x8, #64         (write)
        0xd400_0001,                                // 7: svc #0
        movz(0, 0),                                 // 8: wait: mov x0, #0
        movz(1, 0),                                 // 9: mov x1, #0
        movz(2, 0),                                 // 10: mov x2, #0
        movz(3, 0),                                 // 11: mov x3, #0
        movz(8, 73),                                // 12: mov x8, #73        (ppoll: blocks for ever)
        0xd400_0001,                                // 13: svc #0
        0x1400_0000 | (-6i32 as u32 & 0x03ff_ffff), // 14: b wait (-6 instructions: to 8)
        movz(0, 0),                                 // 15: exit: mov x0, #0
        movz(8, 93),                                // 16: mov x8, #93        (exit)
        0xd400_0001,                                // 17: svc #0
    ];
    instructions.iter().flat_map(|i: &u32| i.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    const BANNER: &str = "nimbus/nimbus-db 7.2 (linux/amd64): running\n";

    fn write(arch: Arch, banner: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        std::fs::write(&path, executable(arch, banner)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    /// Runs `command`: its banner, and that it is still running a moment later.
    fn banner_then_waits(mut command: Command) -> String {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("the program starts");
        let mut out = child.stdout.take().unwrap();
        let mut banner = vec![0u8; BANNER.len()];
        out.read_exact(&mut banner).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "it keeps running");
        child.kill().unwrap();
        child.wait().unwrap();
        String::from_utf8(banner).unwrap()
    }

    fn health(mut command: Command) -> bool {
        let started = Instant::now();
        let status = command.arg("health").status().expect("the health check starts");
        assert!(started.elapsed() < Duration::from_secs(10));
        status.success()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_amd64_program_prints_its_banner_waits_and_answers_its_health_check() {
        let (_dir, path) = write(Arch::Amd64, BANNER);
        assert_eq!(banner_then_waits(Command::new(&path)), BANNER);
        assert!(health(Command::new(&path)));
    }

    fn qemu() -> std::path::PathBuf {
        let qemu = std::path::PathBuf::from("/usr/bin/qemu-aarch64-static");
        assert!(qemu.exists(), "qemu-user-static is missing: run scripts/install-test-deps");
        qemu
    }

    #[test]
    fn the_arm64_program_does_the_same_under_qemu() {
        let (_dir, path) = write(Arch::Arm64, BANNER);
        let mut run = Command::new(qemu());
        run.arg(&path);
        assert_eq!(banner_then_waits(run), BANNER);
        let mut check = Command::new(qemu());
        check.arg(&path);
        assert!(health(check));
    }

    /// llvm-mc, an independent disassembler, reads the instructions as the comments in
    /// `amd64` and `arm64` say.
    #[test]
    fn a_disassembler_reads_the_instructions_as_written() {
        let len = BANNER.len();
        for (arch, triple, code_len, expected) in [
            (
                Arch::Amd64,
                "x86_64",
                52,
                vec![
                    "movq (%rsp), %rax".to_owned(),
                    "cmpq $1, %rax".into(),
                    "jne 33".into(),
                    "leaq 25(%rip), %rsi".into(),
                    format!("movl ${len}, %edx"),
                    "movl $34, %eax".into(),
                    "jmp -9".into(),
                    "movl $60, %eax".into(),
                ],
            ),
            (
                Arch::Arm64,
                "aarch64",
                72,
                vec![
                    "ldr x0, [sp]".to_owned(),
                    "cmp x0, #1".into(),
                    "b.ne #52".into(),
                    "adr x1, #56".into(),
                    format!("mov x2, #{len}"),
                    "mov x8, #64".into(),
                    "mov x8, #73".into(),
                    "b #-24".into(),
                    "mov x8, #93".into(),
                ],
            ),
        ] {
            let elf = executable(arch, BANNER);
            let start = ELF_HEADER + PROGRAM_HEADER;
            let hex: Vec<String> = elf[start..start + code_len].iter().map(|b| format!("0x{b:02x}")).collect();
            let mut mc = Command::new("llvm-mc")
                .args(["--disassemble", &format!("-triple={triple}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("llvm-mc runs (Debian package llvm: scripts/install-test-deps)");
            std::io::Write::write_all(&mut mc.stdin.take().unwrap(), hex.join(" ").as_bytes()).unwrap();
            let out = mc.wait_with_output().unwrap();
            assert!(out.stderr.is_empty(), "{triple}: {}", String::from_utf8_lossy(&out.stderr));
            let listing: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|l| !l.is_empty() && l != ".text")
                .collect();
            for instruction in &expected {
                assert!(listing.contains(instruction), "{triple}: {instruction:?} not in {listing:?}");
            }
            assert_eq!(listing.len(), if arch == Arch::Amd64 { 14 } else { 18 }, "{listing:?}");
        }
    }

    #[test]
    fn banners_are_bounded() {
        let long = "x".repeat(MAX_BANNER * 3);
        let elf = executable(Arch::Arm64, &long);
        assert_eq!(elf.len(), ELF_HEADER + PROGRAM_HEADER + 72 + MAX_BANNER);
        assert_eq!(&elf[..4], b"\x7fELF");
    }
}
