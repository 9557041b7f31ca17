//! Unit tests of the reload decisions, driven by synthetic notify events and looks.

use std::path::{Path, PathBuf};

use notify::Event;
use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, EventKind, Flag, MetadataKind, ModifyKind,
    RemoveKind, RenameMode,
};

use super::decide::look;
use super::mount::is_mount_point;
use super::*;

const DIR: &str = "/etc/signpost";

fn at(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn ev(kind: EventKind, names: &[&str]) -> Event {
    names
        .iter()
        .fold(Event::new(kind), |e, n| e.add_path(at(n)))
}

fn create(name: &str) -> Event {
    ev(EventKind::Create(CreateKind::File), &[name])
}
fn create_dir(name: &str) -> Event {
    ev(EventKind::Create(CreateKind::Folder), &[name])
}
fn open(name: &str) -> Event {
    ev(
        EventKind::Access(AccessKind::Open(AccessMode::Any)),
        &[name],
    )
}
fn write(name: &str) -> Event {
    ev(
        EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        &[name],
    )
}
fn close_write(name: &str) -> Event {
    ev(
        EventKind::Access(AccessKind::Close(AccessMode::Write)),
        &[name],
    )
}
fn close_read(name: &str) -> Event {
    ev(
        EventKind::Access(AccessKind::Close(AccessMode::Read)),
        &[name],
    )
}
fn remove(name: &str) -> Event {
    ev(EventKind::Remove(RemoveKind::File), &[name])
}
fn remove_dir(name: &str) -> Event {
    ev(EventKind::Remove(RemoveKind::Folder), &[name])
}
/// What inotify gives for `rename(from, to)` inside one watched directory.
fn rename(from: &str, to: &str) -> Vec<Event> {
    vec![
        ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            &[from],
        ),
        ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[to]),
        ev(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[from, to],
        ),
    ]
}

fn plain() -> Interest {
    Interest::new(&at("signpost.json"), Some(&at("signpost.json")))
}

fn configmap() -> Interest {
    Interest::new(
        &at("signpost.json"),
        Some(&at("..2026_11_26_14_00_00.123/signpost.json")),
    )
}

fn file(target: &str, sha256: &str) -> Seen {
    Seen::File {
        target: PathBuf::from(target),
        sha256: sha256.to_owned(),
    }
}

const SERVED: Served<'static> = Served {
    sha256: "aaaa",
    last_load_ok: true,
    rejected_sha256: None,
};

// --- Which batches call for a look ---

#[test]
fn reloads_when_file_is_written_in_place() {
    let batch = [
        open("signpost.json"),
        write("signpost.json"),
        write("signpost.json"),
        close_write("signpost.json"),
    ];
    assert!(batch_needs_check(&batch, &plain()));
    assert!(!write_in_progress(&batch, &plain()));
}

#[test]
fn reloads_when_editor_renames_temp_file_over_config() {
    let mut batch = vec![
        create(".signpost.json.tmp"),
        write(".signpost.json.tmp"),
        close_write(".signpost.json.tmp"),
    ];
    assert!(
        !batch_needs_check(&batch, &plain()),
        "the temp file alone is no change"
    );
    batch.extend(rename(".signpost.json.tmp", "signpost.json"));
    assert!(batch_needs_check(&batch, &plain()));
    assert!(!write_in_progress(&batch, &plain()));
}

#[test]
fn reloads_when_vim_renames_over_config() {
    // vim (backupcopy=auto): move the file to its backup, write a new one, drop the backup.
    let mut batch = vec![create("4913"), remove("4913")];
    batch.extend(rename("signpost.json", "signpost.json~"));
    batch.extend([
        create("signpost.json"),
        open("signpost.json"),
        write("signpost.json"),
        close_write("signpost.json"),
        ev(
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            &["signpost.json"],
        ),
        remove("signpost.json~"),
    ]);
    assert!(batch_needs_check(&batch, &plain()));
    assert!(!write_in_progress(&batch, &plain()));
    assert!(!batch_invalidates_watch(&batch, Path::new(DIR)));
}

#[test]
fn reloads_on_configmap_data_swap_without_event_naming_the_file() {
    let mut batch = vec![
        create_dir("..2026_11_26_14_05_00.456"),
        create("..data_tmp"),
    ];
    batch.extend(rename("..data_tmp", "..data"));
    batch.push(remove_dir("..2026_11_26_14_00_00.123"));
    assert!(
        batch
            .iter()
            .all(|e| e.paths.iter().all(|p| !p.ends_with("signpost.json")))
    );
    assert!(batch_needs_check(&batch, &configmap()));
    assert!(!write_in_progress(&batch, &configmap()));
    // The look then finds a new target and new content: load.
    let before = file(
        "/etc/signpost/..2026_11_26_14_00_00.123/signpost.json",
        "aaaa",
    );
    let now = file(
        "/etc/signpost/..2026_11_26_14_05_00.456/signpost.json",
        "bbbb",
    );
    assert_eq!(decide(&now, Some(&before), &SERVED, false), Action::Load);
}

#[test]
fn reloads_when_symlink_target_outside_dir_is_edited_in_place() {
    let interest = Interest::new(&at("signpost.json"), Some(Path::new("/srv/conf/prod.json")));
    let batch = [
        Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any)))
            .add_path(PathBuf::from("/srv/conf/prod.json")),
    ];
    assert!(batch_needs_check(&batch, &interest));
    assert_eq!(
        dirs_to_watch(Path::new(DIR), Some(Path::new("/srv/conf/prod.json"))),
        [PathBuf::from(DIR), PathBuf::from("/srv/conf")]
    );
}

#[test]
fn plain_file_watches_only_its_directory() {
    assert_eq!(
        dirs_to_watch(Path::new(DIR), Some(&at("signpost.json"))),
        [PathBuf::from(DIR)]
    );
    assert_eq!(dirs_to_watch(Path::new(DIR), None), [PathBuf::from(DIR)]);
}

#[test]
fn ignores_events_for_other_files_in_dir() {
    let batch = [
        create("other.json"),
        write("other.json"),
        close_write("other.json"),
        create(".signpost.json.swp"),
        write(".signpost.json.swp"),
        remove("signpost.json.bak"),
        create_dir("backups"),
    ];
    assert!(!batch_needs_check(&batch, &plain()));
    assert!(!write_in_progress(&batch, &plain()));
}

#[test]
fn ignores_our_own_reads_of_the_config() {
    // inotify reports every open and close, including the reloader's own read.
    let batch = [open("signpost.json"), close_read("signpost.json")];
    assert!(!batch_needs_check(&batch, &plain()));
    assert!(!batch_needs_check(&batch, &configmap()));
}

#[test]
fn looks_again_after_event_queue_overflow() {
    let batch = [Event::new(EventKind::Other).set_flag(Flag::Rescan)];
    assert!(batch_needs_check(&batch, &plain()));
}

#[test]
fn delete_is_a_change_and_does_not_invalidate_the_watch() {
    let batch = [remove("signpost.json")];
    assert!(batch_needs_check(&batch, &plain()));
    assert!(!batch_invalidates_watch(&batch, Path::new(DIR)));
    assert!(!write_in_progress(&batch, &plain()));
}

#[test]
fn removing_or_renaming_the_config_dir_invalidates_the_watch() {
    let removed = [Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(PathBuf::from(DIR))];
    assert!(batch_invalidates_watch(&removed, Path::new(DIR)));
    let moved = [
        Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::From)))
            .add_path(PathBuf::from(DIR)),
    ];
    assert!(batch_invalidates_watch(&moved, Path::new(DIR)));
}

#[test]
fn waits_while_the_writer_has_not_closed_the_file() {
    let started = [open("signpost.json"), write("signpost.json")];
    assert!(write_in_progress(&started, &plain()));
    let recreated = [remove("signpost.json"), create("signpost.json")];
    assert!(write_in_progress(&recreated, &plain()));
    let done = [
        started[0].clone(),
        started[1].clone(),
        close_write("signpost.json"),
    ];
    assert!(!write_in_progress(&done, &plain()));
}

// --- What a look calls for ---

#[test]
fn no_reload_when_content_unchanged() {
    // `touch`, or a write of the same bytes.
    let now = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(decide(&now, None, &SERVED, false), Action::Unchanged);
    assert_eq!(decide(&now, Some(&now), &SERVED, false), Action::Nothing);
}

#[test]
fn no_generation_bump_when_configmap_update_keeps_content() {
    let before = file("/etc/signpost/..2026_a/signpost.json", "aaaa");
    let now = file("/etc/signpost/..2026_b/signpost.json", "aaaa");
    assert_eq!(
        decide(&now, Some(&before), &SERVED, false),
        Action::Unchanged
    );
}

#[test]
fn reloads_when_content_changed() {
    let before = file("/etc/signpost/signpost.json", "aaaa");
    let now = file("/etc/signpost/signpost.json", "bbbb");
    assert_eq!(decide(&now, Some(&before), &SERVED, false), Action::Load);
}

#[test]
fn warns_once_when_the_file_disappears() {
    let before = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(
        decide(&Seen::Missing, Some(&before), &SERVED, false),
        Action::WarnMissing
    );
    assert_eq!(
        decide(&Seen::Missing, Some(&Seen::Missing), &SERVED, false),
        Action::Nothing
    );
}

#[test]
fn reloads_when_deleted_file_is_recreated_with_new_content() {
    let now = file("/etc/signpost/signpost.json", "bbbb");
    assert_eq!(
        decide(&now, Some(&Seen::Missing), &SERVED, false),
        Action::Load
    );
    let same = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(
        decide(&same, Some(&Seen::Missing), &SERVED, false),
        Action::Unchanged
    );
}

#[test]
fn bad_content_is_reported_once() {
    let failed = Served {
        sha256: "aaaa",
        last_load_ok: false,
        rejected_sha256: Some("bad1"),
    };
    let bad = file("/etc/signpost/signpost.json", "bad1");
    assert_eq!(
        decide(&bad, Some(&bad), &failed, false),
        Action::Nothing,
        "poll"
    );
    // The same bad bytes under a new ConfigMap directory: not logged again.
    let moved = file("/etc/signpost/..2026_b/signpost.json", "bad1");
    assert_eq!(decide(&moved, Some(&bad), &failed, false), Action::KnownBad);
    let other_bad = file("/etc/signpost/signpost.json", "bad2");
    assert_eq!(decide(&other_bad, Some(&bad), &failed, false), Action::Load);
}

#[test]
fn fix_after_bad_edit_reloads_even_when_it_restores_the_served_bytes() {
    let failed = Served {
        sha256: "aaaa",
        last_load_ok: false,
        rejected_sha256: Some("bad1"),
    };
    let bad = file("/etc/signpost/signpost.json", "bad1");
    let reverted = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(decide(&reverted, Some(&bad), &failed, false), Action::Load);
}

#[test]
fn sighup_looks_again_even_when_nothing_changed() {
    let same = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(decide(&same, Some(&same), &SERVED, true), Action::Unchanged);
    let failed = Served {
        sha256: "aaaa",
        last_load_ok: false,
        rejected_sha256: Some("bad1"),
    };
    let bad = file("/etc/signpost/signpost.json", "bad1");
    assert_eq!(
        decide(&bad, Some(&bad), &failed, true),
        Action::Load,
        "re-report"
    );
    assert_eq!(
        decide(&Seen::Missing, Some(&Seen::Missing), &SERVED, true),
        Action::WarnMissing
    );
}

#[test]
fn unreadable_file_is_reported_once() {
    let denied = Seen::Unreadable {
        error: "Permission denied (os error 13)".into(),
    };
    let before = file("/etc/signpost/signpost.json", "aaaa");
    assert_eq!(
        decide(&denied, Some(&before), &SERVED, false),
        Action::ReportUnreadable
    );
    assert_eq!(
        decide(&denied, Some(&denied), &SERVED, false),
        Action::Nothing
    );
}

#[test]
fn look_hashes_through_a_symlink_and_reports_missing() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "{}").unwrap();
    let link = dir.path().join("signpost.json");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&real, &link).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(&real, &link).unwrap();
    let (seen, bytes) = look(&link);
    assert_eq!(bytes.as_deref(), Some(&b"{}"[..]));
    let Seen::File { target, sha256 } = seen else {
        panic!("expected a file, got {seen:?}")
    };
    assert_eq!(
        sha256,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    #[cfg(unix)]
    assert_eq!(target, std::fs::canonicalize(&real).unwrap());
    let _ = target;
    std::fs::remove_file(&real).unwrap();
    assert_eq!(look(&link).0, Seen::Missing, "dangling symlink");
}

// --- subPath detection ---

const MOUNTINFO: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
812 790 253:1 /var/lib/kubelet/pods/0d6c/volumes/kubernetes.io~configmap/cfg /etc/signpost ro,relatime - ext4 /dev/vda1 rw
813 790 253:1 /var/lib/kubelet/pods/0d6c/volume-subpaths/cfg/signpost/0 /etc/sub/signpost.json ro,relatime - ext4 /dev/vda1 rw
814 790 0:52 / /etc/with\\040space/signpost.json ro,relatime - tmpfs tmpfs rw
";

#[test]
fn detects_configmap_subpath_mount() {
    assert!(is_mount_point(
        MOUNTINFO,
        Path::new("/etc/sub/signpost.json")
    ));
}

#[test]
fn directory_mount_is_fine() {
    assert!(!is_mount_point(
        MOUNTINFO,
        Path::new("/etc/signpost/signpost.json")
    ));
    assert!(is_mount_point(MOUNTINFO, Path::new("/etc/signpost")));
}

#[test]
fn mountinfo_escapes_are_decoded() {
    assert!(is_mount_point(
        MOUNTINFO,
        Path::new("/etc/with space/signpost.json")
    ));
}
