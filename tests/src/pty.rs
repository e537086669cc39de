//! Pseudo-terminals for the end-to-end tests: run a command as the leader
//! of a new session whose controlling terminal is a fresh pty, the way a
//! login shell on an ssh connection or a terminal emulator runs.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

/// A pty pair; the master stays open for as long as this lives (closing it
/// hangs up the session).
pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    /// Index of the slave (`/dev/pts/<index>`).
    pub index: u32,
}

/// Which of the standard fds a command in the pty's session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// stdin, stdout and stderr are all the pty slave.
    Tty,
    /// stdin is `/dev/null`, stdout and stderr the pty slave.
    DevNull,
}

fn set_cloexec(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on an fd we own; no memory is passed.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if r < 0 {
        bail!("fcntl(FD_CLOEXEC): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl Pty {
    /// `openpty(3)`; both ends close-on-exec (the child gets the slave only
    /// as its standard fds).
    pub fn open() -> Result<Pty> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: openpty writes two fds through valid pointers; name,
        // termios and winsize may be null.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if r != 0 {
            bail!("openpty: {}", std::io::Error::last_os_error());
        }
        // SAFETY: openpty succeeded, both fds are open and ours alone.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        set_cloexec(master.as_raw_fd())?;
        set_cloexec(slave.as_raw_fd())?;
        let mut index: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes one unsigned int.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut index) };
        if r != 0 {
            bail!("ioctl(TIOCGPTN): {}", std::io::Error::last_os_error());
        }
        Ok(Pty {
            master,
            slave,
            index,
        })
    }

    /// The master side (what a terminal emulator reads and writes).
    pub fn master(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.master.as_fd()
    }

    /// `(major, minor)` of the slave's character device, from `fstat`.
    pub fn slave_device(&self) -> Result<(u32, u32)> {
        let f = File::from(self.slave.try_clone()?);
        let rdev = f.metadata()?.rdev();
        Ok((libc::major(rdev), libc::minor(rdev)))
    }

    /// Spawns `cmd` as the leader of a new session (`setsid`) with the pty
    /// slave as its controlling terminal (`TIOCSCTTY`) and on stdout and
    /// stderr; stdin per `stdin`.
    pub fn spawn(&self, cmd: &mut Command, stdin: Stdin) -> Result<Child> {
        let out = self.slave.try_clone()?;
        let err = self.slave.try_clone()?;
        match stdin {
            Stdin::Tty => cmd.stdin(Stdio::from(self.slave.try_clone()?)),
            Stdin::DevNull => cmd.stdin(Stdio::null()),
        };
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
        let slave = self.slave.as_raw_fd();
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork
        // and exec; `slave` stays open in the child until exec (cloexec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().context("spawning in the pty")
    }
}

/// Spawns `cmd` detached: a new session without a controlling terminal,
/// stdio on `/dev/null`.
pub fn spawn_detached(cmd: &mut Command) -> Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context("spawning detached")
}
