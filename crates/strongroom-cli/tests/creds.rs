//! `creds`: a role catalog in the store, credentials issued on a real
//! PostgreSQL server (a private cluster from `strongroom-testpg`), renewed
//! and revoked; the password printed only with `--reveal` and never
//! audited.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use strongroom_testpg::TestPostgres;
use support::{Env, fails, json, ok, stdout};

const ADMIN_SECRET: &str = "infra/pg/admin-url";

struct Pg {
    _pg: std::sync::Arc<TestPostgres>,
    /// The administrative URL (superuser, on the fresh database).
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Pg {
    fn new(label: &str) -> Self {
        let pg = TestPostgres::shared().expect("a PostgreSQL cluster");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = rt.block_on(pg.fresh_database(label)).unwrap();
        rt.block_on(async {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query("CREATE TABLE orders (id int)")
                .execute(&admin)
                .await
                .unwrap();
            sqlx::query("INSERT INTO orders VALUES (1), (2)")
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        });
        Self { _pg: pg, url, rt }
    }

    /// The database name of the URL.
    fn database(&self) -> String {
        self.url
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The URL for `user` with `password` on the same database.
    fn url_as(&self, user: &str, password: &str) -> String {
        let (scheme_auth, rest) = self.url.split_once('@').unwrap();
        let scheme = scheme_auth.split_once("://").unwrap().0;
        format!("{scheme}://{user}:{password}@{rest}")
    }

    /// Counts the orders as `user`, or the SQLSTATE of the failure.
    fn count_as(&self, user: &str, password: &str) -> Result<i64, String> {
        self.rt.block_on(async {
            let pool = sqlx::PgPool::connect(&self.url_as(user, password))
                .await
                .map_err(|e| sqlstate(&e))?;
            let n: Result<(i64,), _> = sqlx::query_as("SELECT count(*) FROM orders")
                .fetch_one(&pool)
                .await;
            let write = sqlx::query("INSERT INTO orders VALUES (3)")
                .execute(&pool)
                .await;
            pool.close().await;
            assert_eq!(
                write.map_err(|e| sqlstate(&e)).unwrap_err(),
                "42501",
                "the role may read, not write"
            );
            n.map(|(n,)| n).map_err(|e| sqlstate(&e))
        })
    }
}

fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn catalog(pg: &Pg) -> String {
    format!(
        r#"
connection_secret = "{ADMIN_SECRET}"
role_prefix = "srcli_"

[roles.readonly]
default_ttl_secs = 600
max_ttl_secs = 3600
grants = [
  {{ privileges = ["Connect"], object = {{ Database = {{ name = "{db}" }} }} }},
  {{ privileges = ["Usage"], object = {{ Schema = {{ name = "public" }} }} }},
  {{ privileges = ["Select"], object = {{ Table = {{ schema = "public", name = "orders" }} }} }},
]
"#,
        db = pg.database()
    )
}

#[test]
fn configure_issue_renew_revoke_on_a_real_server() {
    let pg = Pg::new("cli_creds");
    let env = Env::init();
    ok(&env.store(&["put", ADMIN_SECRET], pg.url.as_bytes()));

    // nothing stored yet: a clear error, nothing issued
    fails(&env.store(&["creds", "issue", "readonly"], b""), 28);
    let file = env.file("catalog.toml", &catalog(&pg));
    let out = ok(&env.store(&["creds", "configure", &file], b""));
    assert!(out.contains("revision 1"), "{out}");
    let shown = json(&env.store(&["creds", "show", "--json"], b""));
    assert_eq!(shown["revision"], 1);
    assert_eq!(shown["written_by"], "operator:tester");
    assert_eq!(shown["connection_secret"], ADMIN_SECRET);
    assert_eq!(shown["roles"][0]["lease_path"], "database/creds/readonly");
    assert!(!stdout(&env.store(&["creds", "show"], b"")).contains(&pg.url));

    // without --reveal: no password anywhere in the output
    let quiet = json(&env.store(&["creds", "issue", "readonly", "--json"], b""));
    assert!(quiet["password"].is_null());
    assert!(
        quiet["username"]
            .as_str()
            .unwrap()
            .starts_with("srcli_readonly_")
    );

    let issued = json(&env.store(
        &[
            "creds", "issue", "readonly", "--ttl", "300", "--reveal", "--json",
        ],
        b"",
    ));
    let user = issued["username"].as_str().unwrap().to_owned();
    let password = issued["password"].as_str().unwrap().to_owned();
    let id = issued["lease_id"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 32);
    assert_eq!(pg.count_as(&user, &password), Ok(2));

    let renewed = json(&env.store(
        &["creds", "renew", &id, "--increment", "900", "--json"],
        b"",
    ));
    assert_eq!(renewed["state"], "active");
    // the plain lease command has no engine for it: refused, nothing changed
    fails(
        &env.store(&["lease", "renew", &id, "--increment", "900"], b""),
        23,
    );

    ok(&env.store(&["creds", "revoke", &id], b""));
    let refused = pg.count_as(&user, &password).unwrap_err();
    assert!(refused == "28P01" || refused == "28000", "{refused}");
    fails(&env.store(&["lease", "lookup", &id], b""), 3);

    // the audit trail: the URL read and each issue, never a password or URL
    let text = env.audit_text();
    assert!(!text.contains(&password) && !text.contains(&pg.url));
    let records = env.audit_records();
    assert!(
        records.iter().any(|r| r.event.operation.as_str() == "read"
            && r.event.path.as_deref() == Some(ADMIN_SECRET))
    );
    let issues = records
        .iter()
        .filter(|r| {
            r.event.operation.as_str() == "lease_issue"
                && r.event.path.as_deref() == Some("database/creds/readonly")
                && r.event.lease_id.is_some()
        })
        .count();
    assert!(issues >= 2, "{issues}");
    assert!(
        records
            .iter()
            .any(|r| r.event.operation.as_str() == "write_metadata"
                && r.event.path.as_deref() == Some("pgdyn/catalog")
                && r.event.version == Some(1))
    );
    env.audit_verifies();
}

#[test]
fn bad_catalogs_and_roles_are_refused() {
    let env = Env::init();
    let unknown = env.file(
        "bad.toml",
        "connection_secret = \"a/b\"\npassword = \"hunter2\"\n",
    );
    let out = env.store(&["creds", "configure", &unknown], b"");
    fails(&out, 28);
    assert!(!support::stderr(&out).contains("hunter2"));
    let bad_tpl = env.file(
        "tpl.toml",
        "connection_secret = \"a/b\"\n[roles.r]\ncreation_statements = [\"CREATE ROLE {{nme}}\"]\n",
    );
    fails(&env.store(&["creds", "configure", &bad_tpl], b""), 28);
    fails(&env.store(&["creds", "show"], b""), 28);

    let good = env.file("good.toml", "connection_secret = \"a/b\"\n[roles.r]\n");
    ok(&env.store(&["creds", "configure", &good], b""));
    ok(&env.store(&["creds", "configure", &good], b""));
    let shown = json(&env.store(&["creds", "show", "--json"], b""));
    assert_eq!(shown["revision"], 2);
    // a role the catalog does not define
    fails(&env.store(&["creds", "issue", "nope"], b""), 28);
    // the connection secret does not exist: not found, nothing issued
    fails(&env.store(&["creds", "issue", "r"], b""), 3);

    // a writer that read revision 1 loses to the one that wrote 2
    let lost = env.with_library(async |door| {
        let c = strongroom_sqlx::dynamic::PgCatalog::from_toml_str(
            "connection_secret = \"a/b\"\n",
            "t",
        )
        .unwrap();
        c.save(door, Some(1), "test").await
    });
    assert!(matches!(
        lost,
        Err(strongroom_sqlx::dynamic::PgDynError::CatalogChanged {
            expected: Some(1),
            found: Some(2)
        })
    ));
}

#[test]
fn run_gives_the_command_credentials_and_revokes_them_when_it_ends() {
    let pg = Pg::new("cli_run_creds");
    let env = Env::init();
    ok(&env.store(&["put", ADMIN_SECRET], pg.url.as_bytes()));
    let file = env.file("catalog.toml", &catalog(&pg));
    ok(&env.store(&["creds", "configure", &file], b""));

    // The command writes what it got, then waits for the test to let it go.
    let out = env.path("got.txt");
    let go = env.path("go");
    let script = format!(
        "printf '%s %s' \"$DB_USERNAME\" \"$DB_PASSWORD\" > {out}.tmp && mv {out}.tmp {out}; \
         while [ ! -e {go} ]; do sleep 0.05; done; exit 7",
        out = out.display(),
        go = go.display()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args([
            "run",
            "--creds",
            "DB=readonly",
            "--db",
            &env.db(),
            "--key-file",
            &env.key(),
        ])
        .args(["--", "sh", "-c", &script])
        .env("USER", "tester")
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never got its credentials"
        );
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            panic!(
                "run ended early ({status}): {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let got = std::fs::read_to_string(&out).unwrap();
    let (user, password) = got.split_once(' ').unwrap();
    assert!(user.starts_with("srcli_readonly_"), "{user}");
    assert_eq!(pg.count_as(user, password), Ok(2));

    std::fs::write(&go, b"").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // nothing of the credentials in run's own output
    assert!(!String::from_utf8_lossy(&o.stdout).contains(password));
    assert!(!String::from_utf8_lossy(&o.stderr).contains(password));
    // revoked when the command ended: the role is gone
    let refused = pg.count_as(user, password).unwrap_err();
    assert!(refused == "28P01" || refused == "28000", "{refused}");
    let records = env.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r.event.operation.as_str() == "lease_revoke")
    );
    assert!(!env.audit_text().contains(password));
    env.audit_verifies();

    // a role the catalog does not define: the command never starts
    let never = env.path("never");
    let (db, key) = (env.db(), env.key());
    let never_s = never.display().to_string();
    let o = env.run(
        &[
            "run",
            "--creds",
            "DB=nope",
            "--db",
            &db,
            "--key-file",
            &key,
            "--",
            "touch",
            &never_s,
        ],
        b"",
    );
    fails(&o, 28);
    assert!(!never.exists());
}
