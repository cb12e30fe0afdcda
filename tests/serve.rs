//! `sundae serve` through HTTP, as the page uses it: a job's events arrive in order and end with
//! the same pixels `sundae sample` writes for that seed; cancel stops a job; bad requests get a 4xx
//! with a reason and the server keeps serving.

mod common;

use base64::Engine;
use common::{generator, ok, s};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A server on a free port of localhost, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(model: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sundae"))
        .args(["serve", "--model", s(model), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "sundae serve: http://127.0.0.1:PORT/  (model ...)"
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    Server { child, base }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// POSTs a JSON body; returns the status and the body as text.
fn post(server: &Server, path: &str, body: &str) -> (u16, String) {
    let mut reply = agent()
        .post(&format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.body_mut().read_to_string().unwrap())
}

/// Sends only the headers of a POST declaring `length` bytes; returns the status the server answers.
fn declared_too_large(server: &Server, path: &str, length: usize) -> u16 {
    use std::io::{Read, Write};
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).unwrap();
    let line = String::from_utf8_lossy(&reply[..n]).into_owned();
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"))
}

fn get(server: &Server, path: &str) -> (u16, Vec<u8>) {
    let mut reply = agent()
        .get(&format!("{}{path}", server.base))
        .call()
        .unwrap();
    let status = reply.status().as_u16();
    let mut bytes = Vec::new();
    reply
        .body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .unwrap();
    (status, bytes)
}

fn submit(server: &Server, path: &str, body: &str) -> u64 {
    let (status, text) = post(server, path, body);
    assert_eq!(status, 200, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    reply["job"].as_u64().unwrap()
}

/// Reads a job's event stream, calling `each` on every event (JSON) until the stream ends or `each`
/// says stop; returns the events read.
fn events(
    server: &Server,
    job: u64,
    mut each: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let reply = agent()
        .get(&format!("{}/api/jobs/{job}/events", server.base))
        .call()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(reply.into_body().into_reader()).lines() {
        let line = line.unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let event: serde_json::Value = serde_json::from_str(data).unwrap();
            let go_on = each(&event);
            let last = matches!(
                event["event"].as_str(),
                Some("done" | "error" | "cancelled")
            );
            seen.push(event);
            if last || !go_on {
                break;
            }
        }
    }
    seen
}

fn png_of(data_url: &str) -> image::RgbImage {
    let payload = data_url.split_once("base64,").unwrap().1;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

#[test]
fn a_job_streams_every_step_then_the_pixels_sample_writes_for_its_seed() {
    let temp = tempfile::tempdir().unwrap();
    let model = generator(temp.path());
    let server = start(&model);
    let (status, info) = get(&server, "/api/info");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["resolution"], 16);
    // The fixture bundle has no sampling.toml: no menu starts at "(random per image)".
    assert_eq!(info["defaults"]["random_labels"], serde_json::json!([]));

    let job = submit(
        &server,
        "/api/generate",
        r#"{"count": 3, "steps": 6, "seed": 7}"#,
    );
    let seen = events(&server, job, |_| true);
    let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "queued");
    assert_eq!(kinds[1], "started");
    // No freezing before step 10: every one of the 6 steps is shown, then the result.
    assert_eq!(kinds[2..8], ["step"; 6]);
    assert_eq!(kinds[8], "done");
    let steps: Vec<u64> = seen[2..8]
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [0, 1, 2, 3, 4, 5]);
    assert_eq!(seen[2]["images"].as_array().unwrap().len(), 3);
    let done = &seen[8];
    let command = done["command"].as_str().unwrap();
    assert!(
        command.contains("-n 3") && command.contains("--seed 7") && command.contains("--steps 6")
    );

    // The same request from the command line: the same pixels.
    let folder = temp.path().join("cli");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "3",
        "--steps",
        "6",
        "--seed",
        "7",
        "--out",
        s(&temp.path().join("grid.png")),
        "--out-dir",
        s(&folder),
    ]);
    for (i, url) in done["images"].as_array().unwrap().iter().enumerate() {
        let served = png_of(url.as_str().unwrap());
        let written = image::open(folder.join(format!("{i:04}.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(served, written, "image {i}");
    }
    // Downloads: each image as PNG, the tokens as .npy.
    let (status, png) = get(&server, &format!("/api/jobs/{job}/images/1.png"));
    assert_eq!(status, 200);
    assert_eq!(
        image::load_from_memory(&png).unwrap().to_rgb8(),
        image::open(folder.join("0001.png")).unwrap().to_rgb8()
    );
    let (status, npy) = get(&server, &format!("/api/jobs/{job}/tokens.npy"));
    assert_eq!(status, 200);
    assert!(npy.starts_with(b"\x93NUMPY"));
}

#[test]
fn cancel_stops_a_job_and_the_next_one_still_runs() {
    let temp = tempfile::tempdir().unwrap();
    let model = generator(temp.path());
    let server = start(&model);
    let long = submit(
        &server,
        "/api/generate",
        r#"{"count": 2, "steps": 400, "seed": 1, "temperature": "1.0"}"#,
    );
    let mut cancelled = false;
    let seen = events(&server, long, |event| {
        if event["event"] == "step" && !cancelled {
            let (status, _) = post(&server, &format!("/api/jobs/{long}/cancel"), "");
            assert_eq!(status, 200);
            cancelled = true;
        }
        true
    });
    assert_eq!(seen.last().unwrap()["event"], "cancelled");
    let steps = seen.iter().filter(|e| e["event"] == "step").count();
    assert!(steps < 400, "{steps} steps ran");
    let next = submit(&server, "/api/generate", r#"{"count": 1, "steps": 3}"#);
    assert_eq!(
        events(&server, next, |_| true).last().unwrap()["event"],
        "done"
    );
}

#[test]
fn bad_requests_get_a_4xx_with_a_reason_and_the_server_keeps_serving() {
    let temp = tempfile::tempdir().unwrap();
    let model = generator(temp.path());
    let server = start(&model);
    let cases: [(&str, &str, u16, &str); 9] = [
        (
            "/api/generate",
            r#"{"count": 100000}"#,
            400,
            "count must be 1 to 64",
        ),
        (
            "/api/generate",
            r#"{"steps": 100000}"#,
            400,
            "steps must be at most 500",
        ),
        (
            "/api/generate",
            r#"{"temperature": "hot"}"#,
            400,
            "--temperature",
        ),
        (
            "/api/generate",
            r#"{"labels": ["style=noto"]}"#,
            400,
            "no label sets",
        ),
        (
            "/api/generate",
            r#"{"random_labels": ["style"]}"#,
            400,
            "no label sets",
        ),
        (
            "/api/generate",
            r#"{"count": 2, "colour": 1}"#,
            422,
            "unknown field `colour`",
        ),
        ("/api/generate", r#"{"count": "#, 400, "JSON"),
        (
            "/api/inpaint",
            r#"{"count": 1}"#,
            400,
            "needs an image and a mask",
        ),
        (
            "/api/inpaint",
            r#"{"image": "%%%", "mask": "%%%"}"#,
            400,
            "not base64",
        ),
    ];
    for (path, body, status, reason) in cases {
        let (got, text) = post(&server, path, body);
        assert_eq!(got, status, "{path} {body}: {text}");
        assert!(text.contains(reason), "{path} {body}: {text}");
    }
    // A body over the upload limit is refused on its declared length, before it is sent (a client
    // that sent it all would race the server closing the connection).
    assert_eq!(declared_too_large(&server, "/api/inpaint", 9 << 20), 413);
    assert_eq!(get(&server, "/api/jobs/12345/tokens.npy").0, 404);
    // Still serving.
    assert_eq!(get(&server, "/api/info").0, 200);
    let job = submit(&server, "/api/generate", r#"{"count": 1, "steps": 2}"#);
    assert_eq!(
        events(&server, job, |_| true).last().unwrap()["event"],
        "done"
    );
}

#[test]
fn an_uploaded_image_is_inpainted_with_its_kept_half_pasted_back() {
    let temp = tempfile::tempdir().unwrap();
    let model = generator(temp.path());
    let server = start(&model);
    let original = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 15) as u8, 90])
    });
    let mask = image::RgbImage::from_fn(16, 16, |x, _| {
        if x < 8 {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    let encode = |image: &image::RgbImage| {
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image.clone())
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    };
    let body = serde_json::json!({
        "count": 2, "steps": 4, "image": encode(&original), "mask": encode(&mask)
    });
    let job = submit(&server, "/api/inpaint", &body.to_string());
    let seen = events(&server, job, |_| true);
    let done = seen.last().unwrap();
    assert_eq!(done["event"], "done", "{done}");
    assert!(
        done["command"]
            .as_str()
            .unwrap()
            .starts_with("sundae inpaint")
    );
    for url in done["images"].as_array().unwrap() {
        let result = png_of(url.as_str().unwrap());
        for y in 0..16 {
            for x in 0..8 {
                assert_eq!(result.get_pixel(x, y), original.get_pixel(x, y));
            }
        }
    }
}

#[test]
fn the_command_line_a_job_reports_names_its_labels_and_random_label_sets() {
    use sundae::generate::SamplerRequest;
    use sundae::serve::jobs::{Request, Work, command_line};
    use sundae::sundae::sample::SampleSettings;
    let request = Request {
        work: Work::Sample,
        count: 4,
        sampler: SamplerRequest {
            steps: None,
            temperature: None,
            proportion: None,
            top_k: None,
            min_steps: 10,
            early_stop: true,
            exclude_noise: true,
            seed: 3,
            labels: vec!["style=noto".into()],
            random_labels: vec!["name".into()],
            bundle_random_labels: false,
            guidance: 0.0,
        },
        settings: SampleSettings::default(),
    };
    let line = command_line(Path::new("some-model"), &request);
    assert!(
        line.contains("--label style=noto --random-label name"),
        "{line}"
    );
    assert!(!line.contains("--no-random-labels"), "{line}");
    // A page job with no random set, for a bundle whose `sample` draws some by default, says so.
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("sampling.toml"),
        "random_labels = [\"style\", \"name\"]\n",
    )
    .unwrap();
    let mut unconditional = request;
    unconditional.sampler.random_labels.clear();
    let line = command_line(temp.path(), &unconditional);
    assert!(line.contains("--no-random-labels"), "{line}");
    unconditional.work = Work::Inpaint {
        paste: false,
        resize: false,
        image: Vec::new(),
        mask: Vec::new(),
    };
    let line = command_line(temp.path(), &unconditional);
    assert!(!line.contains("--no-random-labels"), "{line}");
}
