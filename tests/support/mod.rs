//! What the end-to-end tests share: free loopback ports and child processes that are
//! killed however a test ends.

#![allow(dead_code)] // each test binary uses the part it needs

use std::process::Child;

/// A child process (usually the real binary), killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
