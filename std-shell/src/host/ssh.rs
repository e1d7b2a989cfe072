//! `guest-ssh-*-authorized-keys` (qemu-ga's `commands-posix-ssh.c`).
//!
//! Users are looked up in `/etc/passwd` (qemu-ga calls `getpwnam()`, which may also consult
//! NSS sources such as LDAP; those users are not found here).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qga_core::HostError;
use qga_core::host::{Out, StrList};
use qga_core::types::{Bytes, GuestAuthorizedKeys};

use super::message;

struct Passwd {
    uid: u32,
    gid: u32,
    dir: PathBuf,
}

fn err(text: String) -> HostError {
    message(
        text,
        HostError::Message("ssh authorized keys operation failed"),
    )
}

fn lookup(user: &[u8]) -> Result<Passwd, HostError> {
    // qemu-ga 7.2 appends strerror(errno) after getpwnam(): "Success" for an unknown user.
    let (passwd, errno) = match std::fs::read("/etc/passwd") {
        Ok(p) => (p, 0),
        Err(e) => (Vec::new(), crate::errno::errno_of(&e)),
    };
    for line in passwd.split(|&b| b == b'\n') {
        let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if let [name, _, uid, gid, _, dir, ..] = f.as_slice()
            && *name == user
        {
            let num = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<u32>().ok();
            if let (Some(uid), Some(gid)) = (num(uid), num(gid)) {
                return Ok(Passwd {
                    uid,
                    gid,
                    dir: PathBuf::from(OsStr::from_bytes(dir)),
                });
            }
        }
    }
    Err(err(format!(
        "failed to lookup user '{}': {}",
        String::from_utf8_lossy(user),
        crate::errno::strerror(errno)
    )))
}

fn keys_of(list: &mut StrList<'_>) -> Result<Vec<Vec<u8>>, HostError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut keys = Vec::new();
    while let Some(item) = list.next_into(&mut buf) {
        let key = item.map(<[u8]>::to_vec).unwrap_or_default();
        if key.first() == Some(&b'#') || key.contains(&b'\n') {
            return Err(err(format!(
                "invalid OpenSSH public key: '{}'",
                String::from_utf8_lossy(&key)
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// `g_file_get_contents` split on `\n` (a final newline leaves an empty last line).
fn read_keys(path: &Path) -> Result<Vec<Vec<u8>>, HostError> {
    let data = std::fs::read(path).map_err(|e| {
        err(format!(
            "failed to read '{}': Failed to open file \u{201c}{}\u{201d}: {}",
            path.display(),
            path.display(),
            crate::config::io_message(&e)
        ))
    })?;
    Ok(data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect())
}

fn write_keys(path: &Path, keys: &[Vec<u8>], p: &Passwd) -> Result<(), HostError> {
    let contents = keys.join(&b'\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".qga-tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(format!(
                "failed to write to '{}': {}",
                path.display(),
                crate::config::io_message(&e)
            ))
        })?;
    std::os::unix::fs::chown(path, Some(p.uid), Some(p.gid)).map_err(|e| {
        err(format!(
            "failed to set ownership of directory '{}': {}",
            path.display(),
            crate::config::io_message(&e)
        ))
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        err(format!(
            "failed to set permissions of '{}': {}",
            path.display(),
            crate::config::io_message(&e)
        ))
    })
}

/// `guest-ssh-get-authorized-keys`.
pub fn get(user: &[u8], out: &mut Out<'_>) -> Result<(), HostError> {
    let p = lookup(user)?;
    let lines = read_keys(&p.dir.join(".ssh").join("authorized_keys"))?;
    let mut keys: Vec<&[u8]> = lines
        .iter()
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty() && l.first() != Some(&b'#'))
        .collect();
    // qemu-ga prepends each key: the reply lists them last line first.
    keys.reverse();
    let keys: Vec<Bytes<'_>> = keys.into_iter().map(Bytes).collect();
    out.value(&GuestAuthorizedKeys {
        keys: keys.as_slice().into(),
    });
    Ok(())
}

/// `guest-ssh-add-authorized-keys`.
pub fn add(user: &[u8], list: &mut StrList<'_>, reset: bool) -> Result<(), HostError> {
    let keys = keys_of(list)?;
    let p = lookup(user)?;
    let ssh = p.dir.join(".ssh");
    let path = ssh.join("authorized_keys");
    let mut existing = if reset { None } else { read_keys(&path).ok() };
    if existing.is_none() && !ssh.is_dir() {
        std::fs::create_dir(&ssh)
            .map_err(|e| {
                err(format!(
                    "failed to create directory '{}': {}",
                    ssh.display(),
                    crate::config::io_message(&e)
                ))
            })
            .and_then(|()| {
                std::os::unix::fs::chown(&ssh, Some(p.uid), Some(p.gid)).map_err(|e| {
                    err(format!(
                        "failed to set ownership of directory '{}': {}",
                        ssh.display(),
                        crate::config::io_message(&e)
                    ))
                })
            })
            .and_then(|()| {
                std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| {
                        err(format!(
                            "failed to set permissions of directory '{}': {}",
                            ssh.display(),
                            crate::config::io_message(&e)
                        ))
                    },
                )
            })?;
    }
    let all = existing.get_or_insert_with(Vec::new);
    for key in keys {
        if !all.contains(&key) {
            all.push(key);
        }
    }
    write_keys(&path, all, &p)
}

/// `guest-ssh-remove-authorized-keys`.
pub fn remove(user: &[u8], list: &mut StrList<'_>) -> Result<(), HostError> {
    let keys = keys_of(list)?;
    let p = lookup(user)?;
    let path = p.dir.join(".ssh").join("authorized_keys");
    if !path.exists() {
        return Ok(());
    }
    let kept: Vec<Vec<u8>> = read_keys(&path)?
        .into_iter()
        .filter(|line| !keys.contains(line))
        .collect();
    write_keys(&path, &kept, &p)
}
