//! Properties of the whole upload path: any chunking of the same body gives the same stored
//! bytes and the same response, and a body made of good and bad parts in any order stores
//! exactly the good ones. Chunkings come from a fixed-seed generator, so failures reproduce.

use serde_json::Value;

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{simple, via_dicom_object, Uids};
use crate::support::multipart::{Multipart, Part};
use crate::support::server::{files_under, TestServer};

/// A small linear congruential generator (Knuth's MMIX constants): reproducible chunkings.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }

    /// Chunk sizes covering `total` bytes: mostly small, sometimes large, sometimes 1.
    fn chunking(&mut self, total: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut covered = 0;
        while covered < total {
            let size = match self.next(4) {
                0 => 1,
                1 => 1 + self.next(16),
                2 => 1 + self.next(700),
                _ => 1 + self.next(9000),
            };
            sizes.push(size);
            covered += size;
        }
        sizes
    }
}

/// The response with the host-independent parts kept: status and JSON.
async fn send_chunked(server: &TestServer, body: &Multipart, sizes: &[usize]) -> (u16, Value) {
    let content_type = body.content_type();
    let response = http::post_chunked(
        server.addr,
        &server.route("/studies"),
        &[("Content-Type", content_type.as_str())],
        &body.encode(),
        sizes,
    )
    .await;
    (response.status, response.json())
}

#[tokio::test]
async fn any_chunking_gives_the_same_response_and_bytes() {
    let instances = [
        simple(dicom::EXPLICIT_LE, &Uids::fresh()),
        simple(dicom::IMPLICIT_LE, &Uids::fresh()),
        simple(dicom::EXPLICIT_BE, &Uids::fresh()),
        simple(dicom::DEFLATED_LE, &Uids::fresh()),
        via_dicom_object(dicom::EXPLICIT_LE, &Uids::fresh()),
    ];
    let bodies: Vec<&[u8]> = instances.iter().map(|i| i.bytes.as_slice()).collect();
    let body = Multipart::of(&bodies);
    let total = body.encode().len();
    let mut random = Lcg(0x5EED);
    let mut first: Option<(u16, Value)> = None;
    for round in 0..24 {
        // Each round stores into a fresh server, so every answer is a first store.
        let server = TestServer::start().await;
        let sizes = random.chunking(total);
        let answer = send_chunked(&server, &body, &sizes).await;
        assert_eq!(answer.0, 200, "round {round}: {}", answer.1);
        let normalized = normalize(&answer.1, &server.url_base());
        match &first {
            None => first = Some((answer.0, normalized)),
            Some(expected) => assert_eq!(
                &(answer.0, normalized),
                expected,
                "round {round}, chunk sizes {sizes:?}"
            ),
        }
        for instance in &instances {
            let path = server.instance_path(
                &instance.uids.study,
                &instance.uids.series,
                &instance.uids.sop,
            );
            let stored = std::fs::read(&path).expect("stored file");
            assert!(
                stored == instance.bytes,
                "round {round}: {} differs",
                path.display()
            );
        }
        server.stop_and_check_tmp().await;
    }
}

/// The JSON with this server's base URL replaced, so answers of different servers compare.
fn normalize(json: &Value, base: &str) -> Value {
    let text = json.to_string().replace(base, "BASE");
    serde_json::from_str(&text).expect("still JSON")
}

#[tokio::test]
async fn good_parts_are_stored_whatever_bad_parts_surround_them() {
    let mut random = Lcg(0xBAD);
    for round in 0..12 {
        let server = TestServer::start().await;
        let good: Vec<_> = (0..3)
            .map(|_| simple(dicom::EXPLICIT_LE, &Uids::fresh()))
            .collect();
        // Cut inside the last value (16 bytes of pixel data): a cut at an element boundary
        // would leave a shorter but complete instance.
        let truncated = {
            let whole = simple(dicom::EXPLICIT_LE, &Uids::fresh()).bytes;
            whole[..whole.len() - 1 - random.next(15)].to_vec()
        };
        let mut parts: Vec<Part> = good.iter().map(|i| Part::dicom(&i.bytes)).collect();
        parts.push(Part::dicom(&truncated));
        parts.push(Part::dicom(b"not DICOM at all"));
        // Shuffle (Fisher-Yates with the same generator).
        for i in (1..parts.len()).rev() {
            let j = random.next(i + 1);
            parts.swap(i, j);
        }
        let body = Multipart::new(parts);
        let total = body.encode().len();
        let sizes = random.chunking(total);
        let (status, json) = send_chunked(&server, &body, &sizes).await;
        assert_eq!(status, 202, "round {round}: {json}");
        let stored = files_under(&server.root.join("studies"));
        assert_eq!(stored.len(), 3, "round {round}: {stored:?}");
        for instance in &good {
            let path = server.instance_path(
                &instance.uids.study,
                &instance.uids.series,
                &instance.uids.sop,
            );
            assert_eq!(std::fs::read(&path).expect("stored"), instance.bytes);
        }
        server.stop_and_check_tmp().await;
    }
}
