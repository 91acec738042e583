use super::*;

#[test]
fn every_name_is_in_one_entry_only() {
    let mut seen = std::collections::HashSet::new();
    for r in RUNTIMES {
        for n in r.names {
            assert!(seen.insert(*n), "{n} twice");
        }
    }
    assert!(lookup("go1").is_ok() && lookup("php7.2").is_ok());
    assert!(lookup("java8").is_ok() && lookup("java11").is_ok());
    let e = lookup("dotnetcore3.1").unwrap_err().to_string();
    assert!(e.contains("dotnetcore3.1") && e.contains("go1") && e.contains("java11"), "{e}");
    assert!(e.contains("custom-container"), "{e}");
    let e = lookup("python2.7").unwrap_err().to_string();
    assert!(e.contains("python3.9 or later"), "{e}");
    let e = lookup("nodejs8").unwrap_err().to_string();
    assert!(e.contains("nodejs12 or later"), "{e}");
    assert!(!lookup("cobol").unwrap_err().to_string().contains("; update"));
}

#[test]
fn a_missing_interpreter_names_the_debian_package() {
    let interp = Interpreters { php: PathBuf::from("/nonexistent/php"), ..Interpreters::default() };
    let e = check("php7.2", &interp).unwrap_err().to_string();
    assert!(e.contains("php7.2") && e.contains("php8.2-cli") && e.contains("--php"), "{e}");
    assert!(check("go1", &interp).is_ok(), "go1 needs no interpreter");
}

#[test]
fn a_missing_java_names_the_jdk_package_and_the_jvm_is_sized_from_memory() {
    let interp = Interpreters { java: PathBuf::from("/nonexistent/java"), ..Interpreters::default() };
    let e = check("java11", &interp).unwrap_err().to_string();
    assert!(e.contains("java11") && e.contains("openjdk-17-jdk-headless") && e.contains("--java"), "{e}");
    let opts = java_options(128);
    assert!(opts.contains(&"-Xmx59m".to_owned()) && opts.contains(&"-XX:MaxMetaspaceSize=32m".to_owned()), "{opts:?}");
    let opts = java_options(3072);
    assert!(opts.contains(&"-Xmx2124m".to_owned()) && opts.contains(&"-Xms921m".to_owned()), "{opts:?}");
}

#[test]
fn prestarted_jvms_are_sized_per_memory_and_php_runs_its_table_entry() {
    let interp = Interpreters::default();
    let jvm = prestart_argv(Interpreter::Java, Some(256), &interp, false).unwrap();
    assert!(jvm.contains(&"-Xmx166m".to_owned()) && jvm.contains(&"-Duser.dir=/code".to_owned()), "{jvm:?}");
    assert!(jvm.iter().any(|a| a.starts_with("-Djava.library.path=/code:/code/lib:")), "{jvm:?}");
    assert_eq!(jvm.last().map(String::as_str), Some("openfc.runtime.Bootstrap"));
    assert!(prestart_argv(Interpreter::Java, None, &interp, false).is_none(), "a JVM is always for one size");
    let php = prestart_argv(Interpreter::Php, None, &interp, false).unwrap();
    assert_eq!(php.last().map(String::as_str), Some("/var/fc/runtime/php7.2/bootstrap.php"));
    assert!(php.contains(&"variables_order=EGPCS".to_owned()), "{php:?}");
}

#[test]
fn go_handlers_stay_inside_the_package() {
    for ok in ["main", "bin/main", "a.b"] {
        assert_eq!(handler_path(ok).unwrap(), ok);
    }
    for bad in ["", "/main", "../x", "a/../b", "a//b", "./main"] {
        assert!(handler_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn shims_install_under_their_runtime_directories() {
    let tmp = tempfile::tempdir().unwrap();
    install_shims(tmp.path()).unwrap();
    for f in ["python/bootstrap.py", "nodejs/bootstrap.js", "php7.2/bootstrap.php", "php7.2/RingCentral/Psr7/Response.php",
        "java/shim/openfc/runtime/Bootstrap.java", "java/api/com/aliyun/fc/runtime/Context.java"] {
        assert!(tmp.path().join(f).is_file(), "{f}");
    }
}
