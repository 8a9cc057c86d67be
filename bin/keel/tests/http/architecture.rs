//! The crate boundaries, read from the workspace itself so a new crate is checked
//! whatever its name: a domain is a crate under `crates/` that mounts routes (its
//! `http` module has `pub fn configure`); a domain reaches no other domain through its
//! dependencies, direct or not; every other crate under `crates/` is shared and reaches
//! no domain — except the one test-support crate (`keel-testing`), which may, and is
//! therefore only ever a dev-dependency.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// A workspace package as the check needs it.
struct Package {
    name: String,
    dir: std::path::PathBuf,
    /// Under `crates/` (libraries), not `bin/`.
    library: bool,
    mounts_routes: bool,
    /// Workspace packages it depends on, normal (not dev or build) dependencies only.
    uses: BTreeSet<String>,
    /// Workspace packages it has as dev-dependencies.
    dev_uses: BTreeSet<String>,
}

fn workspace() -> Vec<Package> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata json");
    let packages = metadata["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().expect("manifest path"));
            let dir = manifest.parent().expect("package dir");
            let deps = |dev: bool| -> BTreeSet<String> {
                p["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| (d["kind"].as_str() == Some("dev")) == dev)
                    .filter(|d| d["kind"].as_str() != Some("build"))
                    .filter_map(|d| d["name"].as_str())
                    .filter(|d| names.contains(*d))
                    .map(str::to_owned)
                    .collect()
            };
            Package {
                name: p["name"].as_str().expect("name").to_owned(),
                dir: dir.to_path_buf(),
                library: dir
                    .parent()
                    .is_some_and(|parent| parent.ends_with("crates")),
                mounts_routes: ["src/http/mod.rs", "src/http.rs"].iter().any(|file| {
                    std::fs::read_to_string(dir.join(file))
                        .is_ok_and(|code| code.contains("pub fn configure("))
                }),
                uses: deps(false),
                dev_uses: deps(true),
            }
        })
        .collect()
}

/// The workspace packages `name` depends on through normal dependencies, transitively.
fn reach<'a>(packages: &'a [Package], name: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        let Some(package) = packages.iter().find(|p| p.name == next) else {
            continue;
        };
        for dep in &package.uses {
            if seen.insert(dep.as_str()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn domains_depend_on_no_other_domain_and_shared_crates_on_none() {
    let packages = workspace();
    let domains: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p.library && p.mounts_routes)
        .map(|p| p.name.as_str())
        .collect();
    assert!(
        domains.contains("keel-accounts") && domains.contains("keel-notifications"),
        "the domains are found by the routes they mount: {domains:?}"
    );
    assert!(
        packages
            .iter()
            .any(|p| p.name == "keel-events" && p.library),
        "keel-events is a shared crate like the others"
    );
    let mut test_support = Vec::new();
    for package in packages.iter().filter(|p| p.library) {
        let reached: Vec<&str> = reach(&packages, &package.name)
            .into_iter()
            .filter(|d| domains.contains(d) && *d != package.name)
            .collect();
        if domains.contains(package.name.as_str()) {
            assert!(
                reached.is_empty(),
                "domain {} depends on domain(s) {reached:?}: declare a trait instead and \
                 let the binary wire it",
                package.name
            );
        } else if !reached.is_empty() {
            test_support.push((package.name.as_str(), reached));
        }
    }
    // Only test support may know the domains, and nothing ships with it: it is never a
    // normal dependency, only a dev-dependency.
    for (name, reached) in &test_support {
        let shipped_by: Vec<&str> = packages
            .iter()
            .filter(|other| other.uses.contains(*name))
            .map(|other| other.name.as_str())
            .collect();
        assert!(
            shipped_by.is_empty(),
            "shared crate {name} reaches domain(s) {reached:?}, and {shipped_by:?} \
             depend on it outside their tests"
        );
        assert!(
            packages.iter().any(|other| other.dev_uses.contains(*name)),
            "shared crate {name} reaches domain(s) {reached:?}"
        );
    }
    assert_eq!(
        test_support
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>(),
        ["keel-testing"],
        "one test-support crate"
    );
}

/// The source of every domain's `http` module (`src/http/*.rs` or `src/http.rs`), with
/// its path.
fn domain_http_code() -> Vec<(std::path::PathBuf, String)> {
    let packages = workspace();
    let mut all = Vec::new();
    for domain in packages.iter().filter(|p| p.library && p.mounts_routes) {
        let http = domain.dir.join("src/http");
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(&http)
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_else(|_| vec![domain.dir.join("src/http.rs")]);
        for file in files {
            let code = std::fs::read_to_string(&file).unwrap_or_default();
            all.push((file, code));
        }
    }
    all
}

/// Every route of a domain is registered with `.service(handler)`, which brings the
/// handler's OpenAPI entry: `.route(...)` or `web::resource(...)` would serve a route
/// the document does not know.
#[test]
fn domains_register_routes_only_with_their_documentation() {
    for (file, code) in domain_http_code() {
        // utoipa-actix-web's scope documents what it mounts; actix's own would not.
        let code = code.replace("utoipa_actix_web::scope(", "");
        for forbidden in [".route(", "web::resource(", "web::scope("] {
            assert!(
                !code.contains(forbidden),
                "{} registers a route with {forbidden}: use `.service(handler)` with \
                 `#[utoipa::path]` and an actix route macro, so it is documented",
                file.display()
            );
        }
    }
}

/// Bodies are read with `keel_http::Json`: actix's `web::Json` cannot be told to refuse
/// a charset other than UTF-8 (see `keel_http::json::configure_extractors`).
#[test]
fn domains_read_json_bodies_with_keel_json() {
    for (file, code) in domain_http_code() {
        assert!(
            !code.contains("web::Json"),
            "{} reads a body with actix's web::Json: use keel_http::Json",
            file.display()
        );
    }
}

/// The client's address comes from `keel_http::client_address` alone, which believes a
/// forwarding header only from a trusted proxy. Reading the peer or the header anywhere
/// else would let a client forge its address (and escape throttling) again.
#[test]
fn only_the_client_address_module_reads_peers_and_forwarding_headers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let allowed = root.join("crates/http/src/client_address.rs");
    let mut stack = vec![root.join("crates"), root.join("bin")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("tests") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path == allowed {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap_or_default();
            for forbidden in [
                "peer_addr(",
                "realip_remote_addr(",
                "x-forwarded-for",
                "FORWARDED",
            ] {
                assert!(
                    !code.contains(forbidden),
                    "{} uses {forbidden}: take the client's address from \
                     keel_http::client_address::of",
                    path.display()
                );
            }
        }
    }
}
