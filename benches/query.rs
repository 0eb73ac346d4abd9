//! End-to-end latency of the read side over a populated index: QIDO-RS study searches, the
//! series of a study, and WADO-RS series metadata, through the real server (`server::run` on
//! 127.0.0.1:0, in-process).
//!
//! Two stores are generated once per run, straight through [`Index::publish`] in batches of
//! [`PUBLISH_BATCH`] (100,000 STOW-RS instances would take far longer than the measurements):
//! 10,000 and 100,000 instances, each made of studies of 4 series x 25 instances plus one
//! study holding a single 1,000-instance CT series. Every instance has a DICOM JSON of about
//! 4 KB (75 attributes, a `BulkDataURI` for its pixel data), a layout and a path; no file
//! is written, as neither QIDO-RS nor the metadata route reads one.
//!
//! Each store has one kept-alive HTTP/1.1 connection, a blocking std `TcpStream` on the bench
//! thread, so every figure is a full round trip: routing, query parsing, the index, JSON
//! assembly and the transfer of the whole body.
//!
//! Run with `cargo bench --bench query` (about 90 s, 15 of them building the stores).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use dicomwebserver::dicom::json::BULK_URI_PREFIX;
use dicomwebserver::index::record::indexed_values;
use dicomwebserver::index::sqlite::{SqliteIndex, DATABASE_FILE};
use dicomwebserver::index::{Index, InstanceRecord};
use dicomwebserver::{server, Config};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

/// Store sizes measured, in instances.
const STORE_SIZES: [u32; 2] = [10_000, 100_000];
/// Shape of an ordinary study.
const SERIES_PER_STUDY: u32 = 4;
const INSTANCES_PER_SERIES: u32 = 25;
/// Instances of the single series of the large study (the metadata target).
const LARGE_SERIES_INSTANCES: u32 = 1_000;
/// Records per `publish` transaction while building a store.
const PUBLISH_BATCH: usize = 1_000;

const UID_ROOT: &str = "1.2.826.0.1.3680043.10.543";
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// 512 x 512 x 16 bits.
const PIXEL_BYTES: u64 = 512 * 512 * 2;
/// Bytes before the pixel data value in a stored file (preamble, meta group, data set).
const HEADER_BYTES: u64 = 2_048;

const FAMILY_NAMES: [&str; 50] = [
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "WALKER",
    "YOUNG",
    "ALLEN",
    "KING",
    "WRIGHT",
    "SCOTT",
    "TORRES",
    "NGUYEN",
    "HILL",
    "FLORES",
    "GREEN",
    "ADAMS",
    "NELSON",
    "BAKER",
    "HALL",
    "RIVERA",
    "CAMPBELL",
    "MITCHELL",
    "CARTER",
    "ROBERTS",
];
const GIVEN_NAMES: [&str; 20] = [
    "JAMES",
    "MARY",
    "ROBERT",
    "PATRICIA",
    "JOHN",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "WILLIAM",
    "BARBARA",
    "RICHARD",
    "SUSAN",
    "JOSEPH",
    "JESSICA",
    "THOMAS",
    "SARAH",
    "CHARLES",
    "KAREN",
];
/// Study description, modality, body part.
const PROCEDURES: [(&str, &str, &str); 5] = [
    ("CT CHEST W CONTRAST", "CT", "CHEST"),
    ("CT ABDOMEN PELVIS W CONTRAST", "CT", "ABDOMEN"),
    ("CT HEAD WO CONTRAST", "CT", "HEAD"),
    ("MR BRAIN WO CONTRAST", "MR", "BRAIN"),
    ("MR KNEE LEFT WO CONTRAST", "MR", "KNEE"),
];
const SERIES_DESCRIPTIONS: [&str; 4] = ["Localizer", "Axial 5.0", "Axial 1.25", "Coronal MPR"];

/// A deterministic hash (splitmix64's finalizer): the corpus is the same in every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A date from 2015 to 2024.
fn date(seed: u64) -> String {
    let h = mix(seed);
    let (year, month, day) = (2015 + h % 10, 1 + (h >> 8) % 12, 1 + (h >> 16) % 28);
    format!("{year}{month:02}{day:02}")
}

/// One study's patient and study-level values.
struct Study {
    uid: String,
    patient_name: String,
    patient_id: String,
    birth_date: String,
    sex: &'static str,
    date: String,
    time: String,
    accession: String,
    study_id: String,
    procedure: (&'static str, &'static str, &'static str),
    n_series: u32,
    instances_per_series: u32,
}

impl Study {
    /// Ordinary study `index` of a store with `n_patients` patients.
    fn ordinary(index: u32, n_patients: u32) -> Study {
        let patient = mix(u64::from(index)) % u64::from(n_patients);
        let family = FAMILY_NAMES[(patient % 50) as usize];
        let given = GIVEN_NAMES[((patient / 50) % 20) as usize];
        let h = mix(u64::from(index) + 1_000_000);
        Study {
            uid: format!("{UID_ROOT}.1.{}", index + 1),
            patient_name: format!("{family}^{given}"),
            patient_id: format!("PID{:07}", patient + 1),
            birth_date: date(patient + 7).replacen("20", "19", 1),
            sex: if patient % 2 == 0 { "F" } else { "M" },
            date: date(u64::from(index)),
            time: format!("{:02}{:02}{:02}", 7 + h % 12, (h >> 8) % 60, (h >> 16) % 60),
            accession: format!("ACC{:08}", index + 1),
            study_id: format!("{}", index + 1),
            procedure: PROCEDURES[(h >> 24) as usize % PROCEDURES.len()],
            n_series: SERIES_PER_STUDY,
            instances_per_series: INSTANCES_PER_SERIES,
        }
    }

    /// The study holding one [`LARGE_SERIES_INSTANCES`] series, recent so that it is on the
    /// first page of the study list.
    fn large(index: u32) -> Study {
        Study {
            date: "20241115".into(),
            procedure: ("CT CHEST ABDOMEN PELVIS W CONTRAST", "CT", "CHEST"),
            n_series: 1,
            instances_per_series: LARGE_SERIES_INSTANCES,
            ..Study::ordinary(index, 1)
        }
    }

    fn series_uid(&self, series: u32) -> String {
        format!("{}.{}", self.uid.replacen(".1.", ".2.", 1), series + 1)
    }
}

fn put(object: &mut Map<String, Value>, tag: &str, vr: &str, values: Value) {
    object.insert(tag.into(), json!({ "vr": vr, "Value": values }));
}

/// The DICOM JSON of one instance: what a CT scanner sends, about 4 KB.
fn instance_json(study: &Study, series: u32, number: u32, sop_uid: &str) -> Map<String, Value> {
    let (description, modality, body_part) = study.procedure;
    let sop_class = if modality == "MR" {
        MR_IMAGE_STORAGE
    } else {
        CT_IMAGE_STORAGE
    };
    let series_description = if study.n_series == 1 {
        "Axial 1.0 Venous"
    } else {
        SERIES_DESCRIPTIONS[series as usize % SERIES_DESCRIPTIONS.len()]
    };
    let z = -150.0 + 1.25 * f64::from(number);
    let time = format!("{}.{:06}", study.time, number * 1_000);
    let m = &mut Map::new();
    put(m, "00080005", "CS", json!(["ISO_IR 100"]));
    put(m, "00080008", "CS", json!(["ORIGINAL", "PRIMARY", "AXIAL"]));
    put(m, "00080012", "DA", json!([study.date]));
    put(m, "00080013", "TM", json!([time]));
    put(m, "00080016", "UI", json!([sop_class]));
    put(m, "00080018", "UI", json!([sop_uid]));
    for tag in ["00080020", "00080021", "00080022", "00080023"] {
        put(m, tag, "DA", json!([study.date]));
    }
    put(m, "00080030", "TM", json!([study.time]));
    for tag in ["00080031", "00080032", "00080033"] {
        put(m, tag, "TM", json!([time]));
    }
    put(m, "00080050", "SH", json!([study.accession]));
    put(m, "00080060", "CS", json!([modality]));
    put(m, "00080070", "LO", json!(["ACME Medical Systems"]));
    put(m, "00080080", "LO", json!(["General Hospital"]));
    put(
        m,
        "00080090",
        "PN",
        json!([{ "Alphabetic": "WELBY^MARCUS^^DR" }]),
    );
    put(m, "00081010", "SH", json!(["CTSCAN01"]));
    put(m, "00081030", "LO", json!([description]));
    put(m, "0008103E", "LO", json!([series_description]));
    put(m, "00081090", "LO", json!(["Scanmaster 128"]));
    put(
        m,
        "00081140",
        "SQ",
        json!([{
            "00081150": { "vr": "UI", "Value": [sop_class] },
            "00081155": { "vr": "UI", "Value": [format!("{}.0.1", study.series_uid(0))] },
        }]),
    );
    put(
        m,
        "00100010",
        "PN",
        json!([{ "Alphabetic": study.patient_name }]),
    );
    put(m, "00100020", "LO", json!([study.patient_id]));
    put(m, "00100030", "DA", json!([study.birth_date]));
    put(m, "00100040", "CS", json!([study.sex]));
    put(m, "00101010", "AS", json!(["054Y"]));
    put(m, "00101030", "DS", json!([72.5]));
    put(m, "00180015", "CS", json!([body_part]));
    put(m, "00180050", "DS", json!([1.25]));
    put(m, "00180060", "DS", json!([120]));
    put(m, "00181020", "LO", json!(["VA40B", "SOMATOM 2.1"]));
    put(
        m,
        "00181030",
        "LO",
        json!([format!("{description} ROUTINE")]),
    );
    put(m, "00181100", "DS", json!([380.0]));
    put(m, "00181120", "DS", json!([0.0]));
    put(m, "00181130", "DS", json!([154.5]));
    put(m, "00181150", "IS", json!([500]));
    put(m, "00181151", "IS", json!([240]));
    put(m, "00181152", "IS", json!([120]));
    put(m, "00181210", "SH", json!(["B30f"]));
    put(m, "00185100", "CS", json!(["HFS"]));
    put(m, "0020000D", "UI", json!([study.uid]));
    put(m, "0020000E", "UI", json!([study.series_uid(series)]));
    put(m, "00200010", "SH", json!([study.study_id]));
    put(m, "00200011", "IS", json!([series + 1]));
    put(m, "00200012", "IS", json!([1]));
    put(m, "00200013", "IS", json!([number]));
    put(
        m,
        "00200032",
        "DS",
        json!([-190.12890625, -349.62890625, z]),
    );
    put(m, "00200037", "DS", json!([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
    put(m, "00200052", "UI", json!([format!("{}.9", study.uid)]));
    put(m, "00201040", "LO", json!(["IC"]));
    put(m, "00201041", "DS", json!([z]));
    put(m, "00280002", "US", json!([1]));
    put(m, "00280004", "CS", json!(["MONOCHROME2"]));
    put(m, "00280010", "US", json!([512]));
    put(m, "00280011", "US", json!([512]));
    put(m, "00280030", "DS", json!([0.7421875, 0.7421875]));
    put(m, "00280100", "US", json!([16]));
    put(m, "00280101", "US", json!([12]));
    put(m, "00280102", "US", json!([11]));
    put(m, "00280103", "US", json!([0]));
    put(m, "00281050", "DS", json!([40, 400]));
    put(m, "00281051", "DS", json!([400, 1500]));
    put(m, "00281052", "DS", json!([-1024]));
    put(m, "00281053", "DS", json!([1]));
    put(m, "00281054", "LO", json!(["HU"]));
    put(m, "00281055", "LO", json!(["WINDOW1", "WINDOW2"]));
    put(m, "00321060", "LO", json!([description]));
    put(m, "00400244", "DA", json!([study.date]));
    put(m, "00400245", "TM", json!([study.time]));
    put(
        m,
        "00400253",
        "SH",
        json!([format!("PPS{}", study.study_id)]),
    );
    put(m, "00400254", "LO", json!([description]));
    m.insert(
        "7FE00010".into(),
        json!({ "vr": "OW", "BulkDataURI": format!("{BULK_URI_PREFIX}7FE00010") }),
    );
    std::mem::take(m)
}

/// The index record of one instance, as STOW-RS would have built it.
fn record(study: &Study, series: u32, number: u32) -> InstanceRecord {
    let series_uid = study.series_uid(series);
    let sop_uid = format!("{}.{number}", series_uid.replacen(".2.", ".3.", 1));
    let dataset = instance_json(study, series, number, &sop_uid);
    let layout_json = json!({
        "deflated": false,
        "bigEndian": false,
        "frames": { "native": { "offset": HEADER_BYTES, "frameLength": PIXEL_BYTES, "count": 1 } },
        "bulk": { "7FE00010": { "vr": "OW", "offset": HEADER_BYTES, "length": PIXEL_BYTES } },
    })
    .to_string();
    InstanceRecord {
        path: format!(
            "studies/{}/series/{series_uid}/instances/{sop_uid}.dcm",
            study.uid
        ),
        study_uid: study.uid.clone(),
        series_uid,
        sop_class_uid: dataset["00080016"]["Value"][0]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        sop_uid,
        transfer_syntax: EXPLICIT_VR_LE.into(),
        size: HEADER_BYTES + PIXEL_BYTES,
        values: indexed_values(&dataset),
        metadata_json: Value::Object(dataset).to_string(),
        layout_json,
    }
}

/// A generated store and the UIDs the requests address.
struct Store {
    n_instances: u32,
    dir: tempfile::TempDir,
    /// An ordinary study (4 series) for the series search.
    study_uid: String,
    /// The large study and its 1,000-instance series.
    large_study_uid: String,
    large_series_uid: String,
}

/// Builds a store of `n_instances` instances in a new temp dir under /tmp.
fn build_store(n_instances: u32) -> Store {
    let per_study = SERIES_PER_STUDY * INSTANCES_PER_SERIES;
    let n_ordinary = (n_instances - LARGE_SERIES_INSTANCES) / per_study;
    assert_eq!(
        n_ordinary * per_study + LARGE_SERIES_INSTANCES,
        n_instances,
        "the store size is a whole number of studies"
    );
    let n_patients = (n_ordinary * 2 / 5).max(1);
    let dir = tempfile::Builder::new()
        .prefix("dws-query-bench-")
        .tempdir_in("/tmp")
        .expect("create a temp dir under /tmp");
    let started = Instant::now();
    let index = SqliteIndex::open(dir.path()).expect("open the index");
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut n_batches = 0u64;
    let mut json_bytes = 0usize;
    let studies = (0..n_ordinary)
        .map(|i| Study::ordinary(i, n_patients))
        .chain(std::iter::once(Study::large(n_ordinary)));
    for study in studies {
        for series in 0..study.n_series {
            for number in 1..=study.instances_per_series {
                let record = record(&study, series, number);
                json_bytes += record.metadata_json.len();
                batch.push(record);
                if batch.len() == PUBLISH_BATCH {
                    index.publish(n_batches, &batch).expect("publish a batch");
                    batch.clear();
                    n_batches += 1;
                }
            }
        }
    }
    if !batch.is_empty() {
        index.publish(n_batches, &batch).expect("publish a batch");
    }
    assert_eq!(
        index.count().expect("count"),
        u64::from(n_instances),
        "every instance is indexed"
    );
    drop(index);
    let db_bytes = std::fs::metadata(dir.path().join(DATABASE_FILE))
        .map(|m| m.len())
        .unwrap_or_default();
    eprintln!(
        "query: built {n_instances} instances ({} studies, {n_patients} patients, metadata \
         {} B per instance) in {:.1} s, {DATABASE_FILE} {:.0} MiB, {}",
        n_ordinary + 1,
        json_bytes / n_instances as usize,
        started.elapsed().as_secs_f64(),
        db_bytes as f64 / (1024.0 * 1024.0),
        dir.path().display()
    );
    let large = Study::large(n_ordinary);
    Store {
        n_instances,
        dir,
        study_uid: Study::ordinary(n_ordinary / 2, n_patients).uid,
        large_series_uid: large.series_uid(0),
        large_study_uid: large.uid,
    }
}

/// A minimal HTTP/1.1 client on one kept-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
    host: String,
    /// The last response's body.
    body: Vec<u8>,
    line: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            host: addr.to_string(),
            body: Vec::new(),
            line: String::new(),
        }
    }

    fn read_line(&mut self) -> &str {
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .expect("read a response line");
        self.line.trim_end()
    }

    /// Sends `GET path` and reads the whole response; returns the status, the body is in
    /// `self.body`.
    fn get(&mut self, path: &str) -> u16 {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/dicom+json\r\n\r\n",
            self.host
        );
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("send the request");
        let status: u16 = self
            .read_line()
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let line = self.read_line().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name {
                    "content-length" => length = value.trim().parse().expect("a length"),
                    "transfer-encoding" => chunked = value.contains("chunked"),
                    _ => {}
                }
            }
        }
        self.body.clear();
        if chunked {
            loop {
                let size = usize::from_str_radix(self.read_line(), 16).expect("a chunk size");
                if size == 0 {
                    while !self.read_line().is_empty() {}
                    break;
                }
                self.read_body(size);
                self.read_line();
            }
        } else {
            self.read_body(length);
        }
        status
    }

    fn read_body(&mut self, n: usize) {
        let start = self.body.len();
        self.body.resize(start + n, 0);
        self.reader
            .read_exact(&mut self.body[start..])
            .expect("read the body");
    }
}

/// The requests measured, by name.
fn requests(store: &Store) -> Vec<(&'static str, String)> {
    let studies = "/dicomweb/studies";
    vec![
        (
            "qido-search",
            format!(
                "{studies}?PatientName=*SON*&StudyDate=20200101-20241231&limit=101&offset=0\
                 &fuzzymatching=false&includefield=00081030,00080060"
            ),
        ),
        ("qido-list", format!("{studies}?limit=101")),
        (
            "qido-list-include",
            format!("{studies}?limit=101&offset=0&includefield=00081030,00080060"),
        ),
        (
            "qido-study-series",
            format!("{studies}/{}/series", store.study_uid),
        ),
        (
            "wado-series-metadata-1000",
            format!(
                "{studies}/{}/series/{}/metadata",
                store.large_study_uid, store.large_series_uid
            ),
        ),
    ]
}

/// A server over one store, with its client.
struct Running {
    store: Store,
    client: Client,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn start(runtime: &tokio::runtime::Runtime, store: Store) -> Running {
    let (addr, shutdown, task) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let config = Config::with_dir(store.dir.path());
        let task = tokio::spawn(server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        (addr, shutdown, task)
    });
    Running {
        client: Client::connect(addr),
        store,
        shutdown,
        task,
    }
}

/// Sends every request once, checks it succeeds, and prints what it returns.
fn check(running: &mut Running) {
    for (name, path) in requests(&running.store) {
        let status = running.client.get(&path);
        assert_eq!(status, 200, "{name}: {path}");
        let results: Vec<Value> =
            serde_json::from_slice(&running.client.body).expect("a DICOM JSON array");
        let absolute = format!("\"http://{}/dicomweb/studies/", running.client.host);
        let n_bulk_urls = std::str::from_utf8(&running.client.body)
            .expect("UTF-8")
            .matches(&absolute)
            .count();
        eprintln!(
            "query: {}/{name}: {} results, {} bytes, {n_bulk_urls} absolute URLs",
            running.store.n_instances,
            results.len(),
            running.client.body.len()
        );
    }
}

fn bench_query(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut servers: Vec<Running> = STORE_SIZES
        .iter()
        .map(|n| start(&runtime, build_store(*n)))
        .collect();
    for running in &mut servers {
        check(running);
    }
    let names: Vec<&str> = requests(&servers[0].store)
        .iter()
        .map(|(name, _)| *name)
        .collect();
    for (request_idx, name) in names.iter().enumerate() {
        let mut group = c.benchmark_group(*name);
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .sample_size(30)
            // Requests take up to tens of milliseconds: equal samples, not a linear ramp.
            .sampling_mode(SamplingMode::Flat);
        for running in &mut servers {
            let path = requests(&running.store)[request_idx].1.clone();
            let client = &mut running.client;
            group.bench_function(
                BenchmarkId::from_parameter(running.store.n_instances),
                |b| b.iter(|| assert_eq!(client.get(std::hint::black_box(&path)), 200)),
            );
        }
        group.finish();
    }
    for running in servers {
        let _ = running.shutdown.send(());
        runtime
            .block_on(running.task)
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
        // Dropping the store removes its temp dir.
    }
}

criterion_group!(benches, bench_query);
criterion_main!(benches);
