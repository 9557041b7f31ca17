//! The `subPath` mount warning: a config file that is itself a mount point is a ConfigMap mounted
//! with `subPath`, which Kubernetes never updates.

use std::path::Path;

/// Whether `path` is a mount point according to `/proc/self/mountinfo` text (field 5, with the
/// kernel's octal escapes for space, tab, newline and backslash).
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mount_point| Path::new(&unescape_mountinfo(mount_point)) == path)
    })
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(d)) = (bytes[i], octal) {
            let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            if let Ok(b) = u8::try_from(value) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Warns when the config file is itself a mount point: that is a ConfigMap (or Secret) mounted
/// with `subPath`, a bind mount of one inode that Kubernetes never updates.
pub fn warn_if_single_file_mount(config_path: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let absolute = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| absolute.clone());
    if is_mount_point(&mountinfo, &absolute) || is_mount_point(&mountinfo, &canonical) {
        tracing::warn!(
            config = %config_path.display(),
            "the config file is itself a mount point (a ConfigMap mounted with subPath?); \
             Kubernetes never updates such a mount, so edits will not reach signpost: mount the \
             ConfigMap as a directory (no subPath) and point --config at the file inside it"
        );
    }
}
