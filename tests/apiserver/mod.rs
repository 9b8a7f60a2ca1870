//! A small Kubernetes API server for tests: list and watch of Nodes, Pods,
//! PodDisruptionBudgets and PriorityClasses over HTTP/1.1, as the real one speaks them —
//! resourceVersions, chunked watch streams of JSON events, bookmarks, `410 Gone` for a
//! watch from a compacted resourceVersion — plus test controls to drop every open watch,
//! to compact history, and to hold lists back.

#![allow(dead_code)] // each test binary uses the part it needs

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The collections served, by URL path: (path, kind, apiVersion).
const COLLECTIONS: [(&str, &str, &str); 4] = [
    ("/api/v1/nodes", "Node", "v1"),
    ("/api/v1/pods", "Pod", "v1"),
    (
        "/apis/policy/v1/poddisruptionbudgets",
        "PodDisruptionBudget",
        "policy/v1",
    ),
    (
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        "PriorityClass",
        "scheduling.k8s.io/v1",
    ),
];

#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    kind: String,
    kind_of_event: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct State {
    rv: u64,
    /// Current objects by (kind, namespace/name).
    objects: BTreeMap<(String, String), Value>,
    log: Vec<Event>,
    /// A watch from a resourceVersion older than this gets 410 Gone.
    compacted: u64,
    /// Requests served: (path, is watch).
    requests: Vec<(String, bool)>,
}

/// A running test API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// (resourceVersion, connection generation): watches follow the first and close
    /// abruptly when the second changes.
    signal: watch::Sender<(u64, u64)>,
    /// While true, list requests wait.
    lists_held: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn key(object: &Value) -> (String, String) {
    let kind = object["kind"].as_str().expect("objects carry their kind");
    let meta = &object["metadata"];
    let name = meta["name"].as_str().expect("objects carry a name");
    let namespace = match kind {
        "Pod" | "PodDisruptionBudget" => meta["namespace"].as_str().unwrap_or("default"),
        _ => "",
    };
    (kind.to_string(), format!("{namespace}/{name}"))
}

impl ApiServer {
    /// Starts serving `objects` (each with `kind` and `apiVersion`, as `kubectl get -o
    /// json` prints them) on a free loopback port.
    pub async fn start(objects: &[Value]) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (signal, _) = watch::channel((0, 0));
        let (lists_held, _) = watch::channel(false);
        let task = {
            let state = Arc::clone(&state);
            let signal = signal.clone();
            let lists_held = lists_held.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let conn = Connection {
                        state: Arc::clone(&state),
                        signal: signal.subscribe(),
                        lists_held: lists_held.subscribe(),
                    };
                    tokio::spawn(conn.serve(socket));
                }
            })
        };
        let server = ApiServer {
            addr,
            state,
            signal,
            lists_held,
            task,
        };
        for o in objects {
            server.apply(o.clone());
        }
        server
    }

    /// Writes a kubeconfig for this server into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{}\nusers:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn record(&self, kind_of_event: &'static str, mut object: Value) {
        let mut s = self.state.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let k = key(&object);
        if kind_of_event == "DELETED" {
            s.objects.remove(&k);
        } else {
            s.objects.insert(k.clone(), object.clone());
        }
        s.log.push(Event {
            rv,
            kind: k.0,
            kind_of_event,
            object,
        });
        let generation = self.signal.borrow().1;
        self.signal.send_replace((rv, generation));
    }

    /// Creates or replaces an object.
    pub fn apply(&self, object: Value) {
        let exists = self
            .state
            .lock()
            .unwrap()
            .objects
            .contains_key(&key(&object));
        self.record(if exists { "MODIFIED" } else { "ADDED" }, object);
    }

    /// Deletes an object (`namespace` is ignored for cluster-scoped kinds).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let ns = if matches!(kind, "Pod" | "PodDisruptionBudget") {
            namespace
        } else {
            ""
        };
        let last = self
            .state
            .lock()
            .unwrap()
            .objects
            .get(&(kind.to_string(), format!("{ns}/{name}")))
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {ns}/{name} to delete"));
        self.record("DELETED", last);
    }

    /// Closes every open watch mid-stream, as a dropped connection would.
    pub fn drop_watches(&self) {
        let (rv, generation) = *self.signal.borrow();
        self.signal.send_replace((rv, generation + 1));
    }

    /// Forgets history: every resourceVersion handed out so far becomes too old to watch
    /// from (410 Gone), and open watches are dropped, so that clients must re-list.
    pub fn compact(&self) {
        {
            let mut s = self.state.lock().unwrap();
            s.rv += 1;
            s.compacted = s.rv;
        }
        self.drop_watches();
    }

    /// Holds list requests until released (or lets them go).
    pub fn hold_lists(&self, held: bool) {
        self.lists_held.send_replace(held);
    }

    /// How many list (not watch) requests were served.
    pub fn lists_served(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(_, watch)| !watch)
            .count()
    }

    /// The objects currently held.
    pub fn objects(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Connection {
    state: Arc<Mutex<State>>,
    signal: watch::Receiver<(u64, u64)>,
    lists_held: watch::Receiver<bool>,
}

struct Request {
    path: String,
    query: BTreeMap<String, String>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let target = line.split_whitespace().nth(1)?.to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        if header == "\r\n" || header == "\n" {
            break;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Request {
        path: path.to_string(),
        query,
    })
}

async fn write_json(
    socket: &mut BufReader<TcpStream>,
    status: &str,
    body: &Value,
) -> std::io::Result<()> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = socket.get_mut();
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    s.flush().await
}

async fn write_chunk(socket: &mut BufReader<TcpStream>, line: &Value) -> std::io::Result<()> {
    let data = format!("{line}\n");
    let s = socket.get_mut();
    s.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await?;
    s.flush().await
}

impl Connection {
    async fn serve(mut self, socket: TcpStream) {
        let mut socket = BufReader::new(socket);
        while let Some(req) = read_request(&mut socket).await {
            let Some(&(_, kind, api_version)) =
                COLLECTIONS.iter().find(|(path, _, _)| *path == req.path)
            else {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": format!("{} not found", req.path)});
                if write_json(&mut socket, "404 Not Found", &status)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            };
            let is_watch = matches!(
                req.query.get("watch").map(String::as_str),
                Some("true" | "1")
            );
            self.state
                .lock()
                .unwrap()
                .requests
                .push((req.path.clone(), is_watch));
            let served = if is_watch {
                self.watch(&mut socket, &req, kind, api_version).await
            } else {
                self.list(&mut socket, kind, api_version).await
            };
            if served.is_err() {
                return;
            }
        }
    }

    async fn list(
        &mut self,
        socket: &mut BufReader<TcpStream>,
        kind: &str,
        api_version: &str,
    ) -> std::io::Result<()> {
        let _ = self.lists_held.wait_for(|held| !held).await;
        let body = {
            let s = self.state.lock().unwrap();
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((k, _), _)| k == kind)
                .map(|(_, o)| o.clone())
                .collect();
            json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                   "metadata": {"resourceVersion": s.rv.to_string()}, "items": items})
        };
        write_json(socket, "200 OK", &body).await
    }

    /// Streams events after the requested resourceVersion. `Err` closes the connection
    /// without the closing chunk (a dropped connection).
    async fn watch(
        &mut self,
        socket: &mut BufReader<TcpStream>,
        req: &Request,
        kind: &str,
        api_version: &str,
    ) -> std::io::Result<()> {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        socket.get_mut().write_all(head.as_bytes()).await?;
        let mut from: u64 = req
            .query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bookmarks = req
            .query
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true");
        let timeout = req
            .query
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(290), Duration::from_secs);
        let deadline = tokio::time::Instant::now() + timeout;
        let generation = self.signal.borrow_and_update().1;
        let compacted = self.state.lock().unwrap().compacted;
        if from < compacted {
            let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {from} ({compacted})")}});
            write_chunk(socket, &gone).await?;
            return socket.get_mut().write_all(b"0\r\n\r\n").await;
        }
        loop {
            let (events, rv) = {
                let s = self.state.lock().unwrap();
                let events: Vec<Event> = s
                    .log
                    .iter()
                    .filter(|e| e.rv > from && e.kind == kind)
                    .cloned()
                    .collect();
                (events, s.rv)
            };
            for e in events {
                write_chunk(
                    socket,
                    &json!({"type": e.kind_of_event, "object": e.object}),
                )
                .await?;
            }
            if bookmarks && rv > from {
                let bookmark = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                    "metadata": {"resourceVersion": rv.to_string()}}});
                write_chunk(socket, &bookmark).await?;
            }
            from = from.max(rv);
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() || self.signal.borrow_and_update().1 != generation {
                        return Err(std::io::Error::other("connection dropped by the test"));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return socket.get_mut().write_all(b"0\r\n\r\n").await;
                }
            }
        }
    }
}
