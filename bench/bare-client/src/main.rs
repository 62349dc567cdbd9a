//! The benchmark's "bare client": the least work that reads N KV v2 secrets.
//! `bare-client ADDR TOKEN PREFIX N CONCURRENCY [OUTDIR]` opens CONCURRENCY
//! keep-alive HTTP/1.1 connections to ADDR (host:port, plain HTTP), GETs
//! `/v1/secret/data/PREFIX/s{i}` for i in 0..N spread over them, checks each
//! answer is 200, and prints the elapsed seconds. No parsing, no files.
//!
//! With OUTDIR it is the floor for the whole job: it also writes field `a`
//! of each secret to `OUTDIR/s{i}` the cheapest atomic way (create a temp
//! file, write, rename; no fsync, no mode, no JSON parser: the value is cut
//! out of the body by searching for `"a":"`). With FIELDS (`username,password`)
//! it writes those fields joined by `:` instead (`bench/cold_sync.py`: what
//! the template `{{ .username }}:{{ .password }}` renders).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if !(6..=8).contains(&a.len()) {
        eprintln!("usage: bare-client ADDR TOKEN PREFIX N CONCURRENCY [OUTDIR [FIELDS]]");
        std::process::exit(2);
    }
    let (addr, token, prefix) = (a[1].clone(), a[2].clone(), a[3].clone());
    let n: usize = a[4].parse().expect("N");
    let conc: usize = a[5].parse().expect("CONCURRENCY");
    let out: Option<Arc<std::path::PathBuf>> = a.get(6).map(|d| Arc::new(d.into()));
    let fields: Arc<Vec<Vec<u8>>> = Arc::new(
        a.get(7)
            .map_or("a", |f| f.as_str())
            .split(',')
            .map(|f| format!("\"{f}\":\"").into_bytes())
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..conc)
        .map(|_| {
            let (addr, token, prefix, next) = (addr.clone(), token.clone(), prefix.clone(), Arc::clone(&next));
            let (out, fields) = (out.clone(), Arc::clone(&fields));
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
                        write_fields(out, i, &body, &fields);
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

/// Writes the values of `"<field>":"..."` in `body`, joined by `:`, to
/// `out/s{i}` via a temp file and a rename.
fn write_fields(out: &std::path::Path, i: usize, body: &[u8], keys: &[Vec<u8>]) {
    let mut content = Vec::with_capacity(64);
    for (n, key) in keys.iter().enumerate() {
        let start = body
            .windows(key.len())
            .position(|w| w == key.as_slice())
            .expect("the field in the body")
            + key.len();
        let len = body[start..].iter().position(|&b| b == b'"').expect("end of the field");
        if n > 0 {
            content.push(b':');
        }
        content.extend_from_slice(&body[start..start + len]);
    }
    let tmp = out.join(format!(".s{i}.tmp"));
    std::fs::write(&tmp, &content).expect("write temp file");
    std::fs::rename(&tmp, out.join(format!("s{i}"))).expect("rename");
}
