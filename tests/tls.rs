//! TLS, mutual TLS and who may write, over real TLS on loopback with certificates made at
//! test time: bearer tokens (reader, writer, none, unknown), client identities on the
//! writer allow list and off it, clients refused at the handshake (wrong CA, no client
//! certificate under a client CA), and health open to all, also on the plaintext health
//! port. The last tests run the real binary with the TLS flags and `place --server` with
//! the client flags.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Process, free_port};

use preemption_oracle::kube;
use preemption_oracle::service::auth::{AuthConfig, Tokens};
use preemption_oracle::service::pb;
use preemption_oracle::service::pb::preemption_oracle_client::PreemptionOracleClient;
use preemption_oracle::service::server::{self, ServeConfig};
use preemption_oracle::service::tls::TlsConfig;
use preemption_oracle::store::{Batch, Store};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

const WRITER_TOKEN: &str = "writer-secret-1";
const READER_TOKEN: &str = "reader-secret-1";
/// The identity (a DNS SAN) allowed to write under mutual TLS.
const FEEDER: &str = "feeder.oracle.svc";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A certificate and its key, as PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA that signs server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, common_name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Pem {
        self.issue(
            "oracle",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self, common_name: &str, sans: &[&str]) -> Pem {
        self.issue(common_name, sans, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn tokens_config() -> AuthConfig {
    AuthConfig {
        writer_tokens: Tokens::new([WRITER_TOKEN]),
        reader_tokens: Tokens::new([READER_TOKEN]),
        writer_identities: Vec::new(),
    }
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves the kubectl fixture as the default cluster.
    async fn start(config: ServeConfig) -> TestServer {
        let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let text = std::fs::read_to_string(fixture("kubectl-list.json")).unwrap();
        let cluster = kube::decode_cluster(&kube::parse_document(&text).unwrap()).unwrap();
        let store = Arc::new(Store::new());
        store
            .cluster_or_create("")
            .apply(Batch::replace_with(cluster));
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server::serve(listener, store, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap();
    }
}

/// A TLS channel to `addr` trusting `ca`, with an optional client identity.
async fn connect(addr: SocketAddr, ca: &str, identity: Option<&Pem>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(&id.cert, &id.key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

async fn place(channel: &Channel, token: Option<&str>) -> Result<pb::PlaceResponse, tonic::Status> {
    let text = std::fs::read_to_string(fixture("pending-pod-fits.yaml")).unwrap();
    let pod = kube::parse_document(&text).unwrap().to_string();
    let request = pb::PlaceRequest {
        cluster: String::new(),
        pod: Some(pb::PodInput {
            pod: Some(pb::pod_input::Pod::Json(pod)),
        }),
        options: None,
    };
    PreemptionOracleClient::new(channel.clone())
        .place(with_token(request, token))
        .await
        .map(|r| r.into_inner())
}

/// Sends one batch (a new node) on SyncState and waits for its acknowledgement.
async fn sync(channel: &Channel, token: Option<&str>) -> Result<u64, tonic::Status> {
    let node = json!({"kind": "Node", "metadata": {"name": "added"},
                      "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
    let batch = pb::SyncStateRequest {
        cluster: String::new(),
        replace: false,
        changes: vec![pb::ObjectChange {
            change: Some(pb::object_change::Change::Upsert(pb::KubeObject {
                object: Some(pb::kube_object::Object::Json(node.to_string())),
            })),
        }],
        batch_id: String::new(),
        replace_kinds: Vec::new(),
    };
    let mut acks = PreemptionOracleClient::new(channel.clone())
        .sync_state(with_token(tokio_stream::iter(vec![batch]), token))
        .await?
        .into_inner();
    let ack = acks.message().await?.expect("one acknowledgement");
    Ok(ack.revision)
}

async fn health(channel: Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let answer: HealthCheckResponse = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?
        .into_inner();
    Ok(answer.status())
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("the call should be refused").code()
}

#[tokio::test]
async fn tokens_decide_who_reads_and_who_writes_over_tls() {
    let ca = Ca::new("oracle test CA");
    let server_pem = ca.server();
    let server = TestServer::start(ServeConfig {
        tls: Some(TlsConfig::from_pem(
            server_pem.cert.as_str(),
            server_pem.key.as_str(),
            None,
        )),
        auth: Some(tokens_config()),
        ..ServeConfig::default()
    })
    .await;
    let channel = connect(server.addr, &ca.pem(), None).await.unwrap();

    let answer = place(&channel, Some(READER_TOKEN)).await.unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    assert_eq!(answer.node, "worker-a");
    // A writer may read too.
    place(&channel, Some(WRITER_TOKEN)).await.unwrap();
    let revision = sync(&channel, Some(WRITER_TOKEN)).await.unwrap();
    assert!(
        revision > answer.revision,
        "{revision} vs {}",
        answer.revision
    );

    let denied = sync(&channel, Some(READER_TOKEN)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("writer"), "{denied:?}");
    assert_eq!(code(place(&channel, None).await), Code::Unauthenticated);
    assert_eq!(code(sync(&channel, None).await), Code::Unauthenticated);
    assert_eq!(
        code(place(&channel, Some("guess")).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(sync(&channel, Some("guess")).await),
        Code::Unauthenticated
    );

    // Health needs no credential.
    assert_eq!(
        health(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );

    // A client that trusts another CA cannot connect at all.
    let other = Ca::new("some other CA");
    let refused = connect(server.addr, &other.pem(), None).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_identities_decide_who_writes_and_health_has_its_own_plaintext_port() {
    let ca = Ca::new("oracle test CA");
    let server_pem = ca.server();
    let health_listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let health_addr = health_listener.local_addr().unwrap();
    let (ready, ready_rx) = watch::channel(false);
    let server = TestServer::start(ServeConfig {
        tls: Some(TlsConfig::from_pem(
            server_pem.cert.as_str(),
            server_pem.key.as_str(),
            Some(ca.pem().into_bytes()),
        )),
        auth: Some(AuthConfig {
            writer_identities: vec![FEEDER.into()],
            ..tokens_config()
        }),
        health_listener: Some(health_listener),
        ready: Some(ready_rx),
        ..ServeConfig::default()
    })
    .await;

    // The plaintext health port follows the same readiness as the main one.
    let plain = Endpoint::from_shared(format!("http://{health_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        health(plain.clone(), "").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        health(plain.clone(), "liveness").await.unwrap(),
        ServingStatus::Serving
    );
    ready.send(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(plain.clone(), "").await.unwrap() != ServingStatus::Serving {
        assert!(Instant::now() < deadline, "health never turned SERVING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // It serves health only.
    let only_health = place(&plain, Some(READER_TOKEN)).await.unwrap_err();
    assert_eq!(only_health.code(), Code::Unimplemented, "{only_health:?}");

    // The allow-listed identity (a DNS SAN) may write, with no token.
    let feeder = ca.client("feeder", &[FEEDER]);
    let writer = connect(server.addr, &ca.pem(), Some(&feeder))
        .await
        .unwrap();
    sync(&writer, None).await.unwrap();
    place(&writer, None).await.unwrap();

    // Another valid client certificate may read, not write.
    let viewer = ca.client("viewer", &["viewer.example"]);
    let reader = connect(server.addr, &ca.pem(), Some(&viewer))
        .await
        .unwrap();
    let answer = place(&reader, None).await.unwrap();
    assert_eq!(answer.outcome, pb::Outcome::Scheduled as i32);
    assert_eq!(code(sync(&reader, None).await), Code::PermissionDenied);
    // A writer token lifts it; an unknown token is refused outright.
    sync(&reader, Some(WRITER_TOKEN)).await.unwrap();
    assert_eq!(
        code(place(&reader, Some("guess")).await),
        Code::Unauthenticated
    );
    assert_eq!(
        health(reader.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );

    // Without a client certificate the handshake is refused, token or not.
    let anonymous = match connect(server.addr, &ca.pem(), None).await {
        Ok(channel) => place(&channel, Some(WRITER_TOKEN))
            .await
            .map(|_| ())
            .map_err(|s| format!("{s:?}")),
        Err(e) => Err(e),
    };
    assert!(anonymous.is_err(), "a client without a certificate got in");
    // So is a certificate from another CA.
    let stranger = Ca::new("some other CA").client("feeder", &[FEEDER]);
    let foreign = match connect(server.addr, &ca.pem(), Some(&stranger)).await {
        Ok(channel) => sync(&channel, None)
            .await
            .map(|_| ())
            .map_err(|s| format!("{s:?}")),
        Err(e) => Err(e),
    };
    assert!(foreign.is_err(), "a certificate from another CA got in");
    server.stop().await;
}

fn oracle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_preemption-oracle"))
        .args(args)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oracle-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_binary_serves_mutual_tls_and_place_uses_the_client_flags() {
    let dir = temp_dir("tls-cli");
    let ca = Ca::new("oracle test CA");
    let server_pem = ca.server();
    let client = ca.client("viewer", &[]);
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let server_cert = write(&dir, "server.pem", &server_pem.cert);
    let server_key = write(&dir, "server-key.pem", &server_pem.key);
    let client_cert = write(&dir, "client.pem", &client.cert);
    let client_key = write(&dir, "client-key.pem", &client.key);
    let writers = write(&dir, "writers", &format!("# writers\n\n{WRITER_TOKEN}\n"));
    let readers = write(&dir, "readers", &format!("{READER_TOKEN}\n"));
    let reader_token = write(&dir, "reader-token", &format!("{READER_TOKEN}\n"));
    let state = fixture("kubectl-list.json").display().to_string();
    let pod = fixture("pending-pod-fits.yaml").display().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let health_listen = format!("127.0.0.1:{}", free_port());

    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_preemption-oracle"))
            .args([
                "serve",
                "--listen",
                &listen,
                "--health-listen",
                &health_listen,
            ])
            .args(["--state", &state, "--tls-cert", &server_cert, "--tls-key"])
            .args([&server_key, "--client-ca", &ca_file])
            .args(["--writer-identity", FEEDER, "--writer-token-file", &writers])
            .args(["--reader-token-file", &readers])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Up once the plaintext health port answers SERVING.
    let started = Instant::now();
    loop {
        if let Ok(channel) = Endpoint::from_shared(format!("http://{health_listen}"))
            .unwrap()
            .connect()
            .await
            && health(channel, "").await.ok() == Some(ServingStatus::Serving)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let tls = [
        "--tls-ca",
        &ca_file,
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
        "--tls-server-name",
        "localhost",
    ];
    let base = ["place", "--server", &listen, "--pod", &pod, "--json"];
    let out = oracle(&[&base[..], &tls, &["--token-file", &reader_token]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["outcome"], "SCHEDULED");
    assert_eq!(answer["node"], "worker-a");

    // The certificate alone is a reader's credential.
    let out = oracle(&[&base[..], &tls].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a client certificate the server refuses the handshake.
    let out = oracle(
        &[
            &base[..],
            &["--tls-ca", &ca_file, "--token-file", &reader_token],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());

    // A name the server's certificate does not carry is refused by the client.
    let mut wrong_name = tls;
    wrong_name[7] = "elsewhere.example";
    let out = oracle(&[&base[..], &wrong_name].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");

    // An unknown token is refused even with a good certificate.
    let guess = write(&dir, "guess", "guess\n");
    let out = oracle(&[&base[..], &tls, &["--token-file", &guess]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unauthenticated"), "{err}");

    // The token files and the writer identity reached the server.
    let addr: SocketAddr = listen.parse().unwrap();
    let viewer = connect(addr, &ca.pem(), Some(&client)).await.unwrap();
    assert_eq!(code(sync(&viewer, None).await), Code::PermissionDenied);
    assert_eq!(
        code(sync(&viewer, Some(READER_TOKEN)).await),
        Code::PermissionDenied
    );
    sync(&viewer, Some(WRITER_TOKEN)).await.unwrap();
    let feeder = connect(addr, &ca.pem(), Some(&ca.client("feeder", &[FEEDER])))
        .await
        .unwrap();
    sync(&feeder, None).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_refuses_bad_tls_and_token_flags_by_name() {
    let dir = temp_dir("tls-flags");
    let empty = write(&dir, "empty", "# only a comment\n\n");
    let not_pem = write(&dir, "not-pem", "hello\n");
    let missing = dir.join("missing.pem").display().to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["serve", "--tls-cert", &not_pem], "--tls-key"),
        (&["serve", "--client-ca", &not_pem], "--tls-cert"),
        (&["serve", "--writer-identity", "x"], "--client-ca"),
        (
            &["serve", "--tls-cert", &not_pem, "--tls-key", &not_pem],
            "--tls-cert",
        ),
        (
            &["serve", "--tls-cert", &missing, "--tls-key", &not_pem],
            "missing.pem",
        ),
        (&["serve", "--reader-token-file", &empty], "no token"),
        (
            &[
                "place",
                "--server",
                "127.0.0.1:1",
                "--pod",
                &not_pem,
                "--token-file",
                &empty,
            ],
            "--token-file",
        ),
    ];
    for (args, expected) in cases {
        let out = oracle(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
