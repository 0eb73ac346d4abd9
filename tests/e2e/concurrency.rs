//! Concurrent uploads: several requests at once, each on its own connection, all succeed and
//! every file is intact.

use crate::support::dicom;
use crate::support::http;
use crate::support::instances::{simple, Instance, Uids};
use crate::support::multipart::Multipart;
use crate::support::response::{expect_stored, StoreResult};
use crate::support::server::{files_under, TestServer};

const UPLOADS: usize = 8;
const INSTANCES_PER_UPLOAD: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_uploads_all_succeed() {
    let server = TestServer::start().await;
    let mut uploads = Vec::new();
    for upload in 0..UPLOADS {
        let first = Uids::fresh();
        let syntax = [dicom::EXPLICIT_LE, dicom::IMPLICIT_LE, dicom::DEFLATED_LE][upload % 3];
        let instances: Vec<Instance> = (0..INSTANCES_PER_UPLOAD)
            .map(|_| simple(syntax, &first.sibling()))
            .collect();
        uploads.push(instances);
    }
    let mut tasks = Vec::new();
    for instances in &uploads {
        let bodies: Vec<&[u8]> = instances.iter().map(|i| i.bytes.as_slice()).collect();
        let body = Multipart::of(&bodies);
        let (addr, path) = (server.addr, server.route("/studies"));
        tasks.push(tokio::spawn(async move {
            let content_type = body.content_type();
            let headers = [("Content-Type", content_type.as_str())];
            http::post_chunked(addr, &path, &headers, &body.encode(), &[997]).await
        }));
    }
    for (task, instances) in tasks.into_iter().zip(&uploads) {
        let response = task.await.expect("upload task did not panic");
        let result = StoreResult::parse(&response);
        assert_eq!(result.status, 200, "{}", result.json);
        for instance in instances {
            expect_stored(&server, &result, instance);
        }
    }
    let stored = files_under(&server.root.join("studies"));
    assert_eq!(stored.len(), UPLOADS * INSTANCES_PER_UPLOAD);
    server.stop_and_check_tmp().await;
}
