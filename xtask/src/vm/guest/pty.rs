//! A pseudo-terminal for the guest's interactive probe: a process that is
//! a session leader with the pty's slave as its controlling terminal and
//! stdio.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use anyhow::{Context, Result};

/// `posix_openpt` + `grantpt` + `unlockpt`: the master fd and slave path.
fn open_pty() -> Result<(i32, CString)> {
    // SAFETY: plain libc calls on a fd this function owns; the name buffer
    // is sized and NUL-terminated by ptsname_r.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(io::Error::last_os_error()).context("posix_openpt");
        }
        if libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            let e = io::Error::last_os_error();
            libc::close(master);
            return Err(e).context("grantpt/unlockpt");
        }
        let mut buf = [0 as libc::c_char; 128];
        if libc::ptsname_r(master, buf.as_mut_ptr(), buf.len()) != 0 {
            let e = io::Error::last_os_error();
            libc::close(master);
            return Err(e).context("ptsname_r");
        }
        let name = std::ffi::CStr::from_ptr(buf.as_ptr()).to_owned();
        Ok((master, name))
    }
}

/// Runs `argv` as a session leader with the pty's slave as its controlling
/// terminal and stdio: an interactive process, as a login shell would be.
pub(super) fn spawn_on_pty(argv: &[&str]) -> Result<(Child, i32)> {
    let (master, slave) = open_pty()?;
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            for target in 0..3 {
                if libc::dup2(fd, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if fd > 2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("spawning on a pty")?;
    Ok((child, master))
}
