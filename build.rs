//! Compiles proto/ with a pure-Rust protobuf compiler (protox): no system protoc.

use prost::Message;

fn main() {
    let protos = ["proto/preemption_oracle/v1/oracle.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"]).expect("proto/ compiles");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set"));
    std::fs::write(out.join("oracle_descriptor.bin"), fds.encode_to_vec())
        .expect("descriptor set written");
    // A batch holds a `KubeObject` per change, most of them JSON text: the native
    // messages (a pod's is hundreds of bytes) are boxed so that a change is small.
    let mut build = tonic_prost_build::configure();
    for native in [
        "node",
        "pod",
        "pod_disruption_budget",
        "priority_class",
        "namespace",
    ] {
        build = build.boxed(format!(".preemption_oracle.v1.KubeObject.object.{native}"));
    }
    build.compile_fds(fds).expect("tonic code generated");
}
