//! Why a database could not be opened, in words an operator acts on: for a SQLite file, what
//! is wrong with its path (a directory missing, a file where a directory should be, no
//! permission to write, not a database); for PostgreSQL, what the server or the network said,
//! without libpq's line breaks. `Store::open` puts it after the database's name, on one line.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Why the SQLite file at `path` could not be opened, given what SQLite said (`said`). The
/// file system is looked at first: SQLite says "unable to open the database file" for most
/// causes.
pub fn sqlite(path: &str, said: &str) -> String {
    if let Some(cause) = path_problem(Path::new(path)) {
        return cause;
    }
    if said.contains("file is not a database") {
        return format!("{path} is not a SQLite database (file is not a database)");
    }
    if said.contains("readonly database") || said.to_lowercase().contains("unable to open") {
        if let Some(cause) = write_problem(Path::new(path)) {
            return cause;
        }
    }
    said.to_string()
}

/// What keeps a file from being opened or created at `file`, found by looking at its directory.
fn path_problem(file: &Path) -> Option<String> {
    if file.as_os_str() == ":memory:" {
        return None;
    }
    let dir = directory_of(file);
    match std::fs::metadata(&dir) {
        Ok(meta) if !meta.is_dir() => Some(format!("{} is a file, not a directory", dir.display())),
        Ok(_) => match std::fs::metadata(file) {
            Ok(meta) if meta.is_dir() => Some(format!("{} is a directory, not a database file", file.display())),
            _ => None,
        },
        Err(err) if err.kind() == ErrorKind::PermissionDenied => Some(format!("permission denied: the directory {} cannot be reached", dir.display())),
        Err(_) => {
            // The nearest ancestor that exists says which: a file in the way, or a directory missing.
            let in_the_way = dir.ancestors().skip(1).find_map(|ancestor| {
                let ancestor = if ancestor.as_os_str().is_empty() { Path::new(".") } else { ancestor };
                std::fs::metadata(ancestor).ok().map(|meta| (!meta.is_dir()).then(|| ancestor.to_path_buf()))
            });
            Some(match in_the_way.flatten() {
                Some(file) => format!("{} is a file, not a directory", file.display()),
                None => format!("no such directory: {} (create it first)", dir.display()),
            })
        }
    }
}

/// Whether this user may write the file, or create it (and SQLite's `-wal` and `-shm` files)
/// in its directory: tried, not guessed from mode bits.
fn write_problem(file: &Path) -> Option<String> {
    let denied = |err: &std::io::Error| matches!(err.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem);
    if file.exists() {
        if let Err(err) = std::fs::OpenOptions::new().read(true).write(true).open(file) {
            if denied(&err) {
                return Some(format!("permission denied: {} cannot be written by this user ({err})", file.display()));
            }
        }
    }
    let dir = directory_of(file);
    let probe = dir.join(format!(".spscan-router-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(err) if denied(&err) => Some(format!(
            "permission denied: this user cannot create files in {} (SQLite writes {}-wal and -shm beside the database)",
            dir.display(),
            file.display()
        )),
        Err(_) => None,
    }
}

/// The directory a database file is in, absolute when it can be made so (a message that says
/// "cannot create files in ." leaves the reader to guess where the router ran).
fn directory_of(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Why PostgreSQL could not be reached, from libpq's message, on one line.
pub fn postgres(said: &str) -> String {
    let line = said.split_whitespace().collect::<Vec<_>>().join(" ");
    // libpq: `connection to server at "127.0.0.1", port 5499 failed: Connection refused Is the …`
    let cause = line.split_once(" failed: ").map_or(line.as_str(), |(_, cause)| cause);
    if cause.starts_with("Connection refused") {
        "connection refused (is PostgreSQL running on that host and port, accepting TCP/IP connections?)".into()
    } else if cause.contains("could not translate host name") {
        "the host name does not resolve".into()
    } else if cause.contains("timeout expired") {
        "no answer before the connection timed out".into()
    } else {
        cause.trim_start_matches("FATAL: ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_path_says_what_is_wrong_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere/router.db");
        assert_eq!(sqlite(missing.to_str().unwrap(), "Unable to open the database file"), format!("no such directory: {} (create it first)", dir.path().join("nowhere").display()));
        let file = dir.path().join("plain");
        std::fs::write(&file, "text").unwrap();
        for under in [file.join("router.db"), file.join("deeper/router.db")] {
            assert_eq!(sqlite(under.to_str().unwrap(), "Unable to open the database file"), format!("{} is a file, not a directory", file.display()));
        }
        assert_eq!(sqlite(file.to_str().unwrap(), "file is not a database"), format!("{} is not a SQLite database (file is not a database)", file.display()));
        assert_eq!(sqlite(dir.path().to_str().unwrap(), "Unable to open the database file"), format!("{} is a directory, not a database file", dir.path().display()));
        assert_eq!(sqlite(file.to_str().unwrap(), "something else"), "something else", "nothing wrong with the path: SQLite's words");
    }

    #[test]
    fn a_postgres_refusal_is_one_line_in_words() {
        let said = "connection to server at \"127.0.0.1\", port 5499 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        assert!(postgres(said).starts_with("connection refused"), "{}", postgres(said));
        let said = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist\n";
        assert_eq!(postgres(said), "database \"nope\" does not exist");
    }
}
