//! The benchmark's "bare client": the least work that reads N KV v2 secrets.
//! `bare-client ADDR TOKEN PREFIX N CONCURRENCY [OUTDIR]` opens CONCURRENCY
//! keep-alive HTTP/1.1 connections to ADDR (host:port, plain HTTP), GETs
//! `/v1/secret/data/PREFIX/s{i}` for i in 0..N spread over them, checks each
//! answer is 200, and prints the elapsed seconds. No parsing, no files.
//!
//! With OUTDIR it is the floor for the whole job: it also writes field `a`
//! of each secret to `OUTDIR/s{i}` the cheapest atomic way (create a temp
//! file, write, rename; no fsync, no mode, no JSON parser: the value is cut
//! out of the body by searching for `"a":"`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 && a.len() != 7 {
        eprintln!("usage: bare-client ADDR TOKEN PREFIX N CONCURRENCY [OUTDIR]");
        std::process::exit(2);
    }
    let (addr, token, prefix) = (a[1].clone(), a[2].clone(), a[3].clone());
    let n: usize = a[4].parse().expect("N");
    let conc: usize = a[5].parse().expect("CONCURRENCY");
    let out: Option<Arc<std::path::PathBuf>> = a.get(6).map(|d| Arc::new(d.into()));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..conc)
        .map(|_| {
            let (addr, token, prefix, next) = (addr.clone(), token.clone(), prefix.clone(), Arc::clone(&next));
            let out = out.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut w = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    write!(
                        w,
                        "GET /v1/secret/data/{prefix}/s{i} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\n\r\n"
                    )
                    .expect("write");
                    let mut status = String::new();
                    r.read_line(&mut status).expect("status");
                    assert!(status.contains(" 200 "), "s{i}: {status}");
                    let mut len = 0usize;
                    let mut chunked = false;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).expect("header");
                        if h == "\r\n" {
                            break;
                        }
                        let l = h.to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().expect("length");
                        }
                        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                            chunked = true;
                        }
                    }
                    let mut body = Vec::new();
                    if chunked {
                        loop {
                            let mut size = String::new();
                            r.read_line(&mut size).expect("chunk size");
                            let sz = usize::from_str_radix(size.trim(), 16).expect("hex");
                            let mut buf = vec![0; sz + 2];
                            r.read_exact(&mut buf).expect("chunk");
                            body.extend_from_slice(&buf[..sz]);
                            if sz == 0 {
                                break;
                            }
                        }
                    } else {
                        body.resize(len, 0);
                        r.read_exact(&mut body).expect("body");
                    }
                    if let Some(out) = &out {
                        write_field(out, i, &body);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    println!("{:.6}", start.elapsed().as_secs_f64());
}

/// Writes the value of `"a":"..."` in `body` to `out/s{i}` via a temp file
/// and a rename.
fn write_field(out: &std::path::Path, i: usize, body: &[u8]) {
    const KEY: &[u8] = b"\"a\":\"";
    let start = body
        .windows(KEY.len())
        .position(|w| w == KEY)
        .expect("field a in the body")
        + KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"').expect("end of field a");
    let tmp = out.join(format!(".s{i}.tmp"));
    std::fs::write(&tmp, &body[start..start + len]).expect("write temp file");
    std::fs::rename(&tmp, out.join(format!("s{i}"))).expect("rename");
}
