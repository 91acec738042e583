use super::*;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
big:x:70000:70001::/home/big:/bin/sh
broken:x:notanumber:0::/:/bin/sh
";

const GROUP: &str = "\
root:x:0:
wheel:x:10:root,app
staff:x:50:app
app:x:1000:
nogroup:x:65534:
";

fn run(spec: &str) -> Result<RunUser, String> {
    resolve_spec(spec, PASSWD, GROUP)
}

fn ids(u: &RunUser) -> (u32, u32, Vec<u32>) {
    (u.uid, u.gid, u.groups.clone())
}

#[test]
fn every_user_form() {
    // Empty: uid 0 by its passwd entry, with the groups listing root.
    assert_eq!(ids(&run("").unwrap()), (0, 0, vec![10]));
    assert_eq!(run("").unwrap().home.as_deref(), Some("/root"));
    // A name: primary gid from passwd, supplementary groups from group.
    let app = run("app").unwrap();
    assert_eq!(ids(&app), (1000, 1000, vec![10, 50]));
    assert_eq!(app.home.as_deref(), Some("/home/app"));
    // A uid with an entry behaves like its name.
    assert_eq!(ids(&run("1000").unwrap()), (1000, 1000, vec![10, 50]));
    // With a group: that gid, supplementary groups ignored.
    assert_eq!(ids(&run("app:staff").unwrap()), (1000, 50, vec![]));
    assert_eq!(ids(&run("1000:50").unwrap()), (1000, 50, vec![]));
    assert_eq!(ids(&run("1000:staff").unwrap()), (1000, 50, vec![]));
    assert_eq!(ids(&run("app:77").unwrap()), (1000, 77, vec![]), "a numeric gid needs no group entry");
    // A uid without an entry: gid 0 (Docker), no home.
    let ghost = run("4242").unwrap();
    assert_eq!(ids(&ghost), (4242, 0, vec![]));
    assert_eq!(ghost.home, None);
    assert_eq!(ids(&run("4242:4343").unwrap()), (4242, 4343, vec![]));
    assert_eq!(ids(&run("app:").unwrap()), (1000, 1000, vec![10, 50]), "an empty group is no group");
}

#[test]
fn unknown_names_are_refused() {
    assert_eq!(run("ghost").unwrap_err(), "user 'ghost' not found in its /etc/passwd");
    assert_eq!(run("app:ghosts").unwrap_err(), "group 'ghosts' not found in its /etc/group");
    assert_eq!(run("broken").unwrap_err(), "user 'broken' not found in its /etc/passwd");
    assert!(run("4294967295").unwrap_err().contains("out of range"));
    // No passwd at all: names fail, numbers work.
    assert!(resolve_spec("app", "", "").is_err());
    assert_eq!(ids(&resolve_spec("", "", "").unwrap()), (0, 0, vec![]));
    assert_eq!(ids(&resolve_spec("7:8", "", "").unwrap()), (7, 8, vec![]));
}

fn image(passwd: &str, group: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("etc")).unwrap();
    std::fs::write(tmp.path().join("etc/passwd"), passwd).unwrap();
    std::fs::write(tmp.path().join("etc/group"), group).unwrap();
    tmp
}

#[test]
fn resolves_from_the_tree_and_squashes_high_ids() {
    let tmp = image(PASSWD, GROUP);
    let app = resolve_user(tmp.path(), "app", "r").unwrap();
    assert_eq!(ids(&app), (1000, 1000, vec![10, 50]));
    let big = resolve_user(tmp.path(), "big", "r").unwrap();
    assert_eq!(ids(&big), (65534, 65534, vec![]), "ids above 65535 map to 65534 like layer owners");
    let err = resolve_user(tmp.path(), "ghost", "reg.example/app:1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "image 'reg.example/app:1' is not a valid image: user 'ghost' not found in its /etc/passwd"
    );
}

#[test]
fn passwd_symlinks_stay_inside_the_root() {
    // Inside: etc/passwd -> /../../srv/passwd resolves to <root>/srv/passwd.
    let tmp = image("", GROUP);
    std::fs::create_dir(tmp.path().join("srv")).unwrap();
    std::fs::write(tmp.path().join("srv/passwd"), PASSWD).unwrap();
    std::fs::remove_file(tmp.path().join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink("/../../srv/passwd", tmp.path().join("etc/passwd")).unwrap();
    assert_eq!(resolve_user(tmp.path(), "app", "r").unwrap().uid, 1000);

    // Out: the host's passwd (which has root) must not be what the image's name resolves against.
    let tmp = image("", "");
    std::fs::remove_file(tmp.path().join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root/etc/passwd", tmp.path().join("etc/passwd")).unwrap();
    assert!(std::fs::read_to_string("/etc/passwd").unwrap().starts_with("root:"));
    assert!(resolve_user(tmp.path(), "root", "r").is_err());

    // A whole etc symlinked to the host's /etc lands on <root>/etc: itself, a loop, refused cleanly.
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", tmp.path().join("etc")).unwrap();
    assert!(resolve_user(tmp.path(), "root", "r").is_err());
    assert_eq!(
        resolve_user(tmp.path(), "5", "r").map(|u| u.uid).ok(),
        None,
        "the loop is an error, not a missing file"
    );
}

#[test]
fn a_fifo_passwd_does_not_hang() {
    let tmp = image("", "");
    std::fs::remove_file(tmp.path().join("etc/passwd")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        tmp.path().join("etc/passwd"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(resolve_user(tmp.path(), "app", "r").is_err());
    assert_eq!(resolve_user(tmp.path(), "12", "r").unwrap().uid, 12);
}
