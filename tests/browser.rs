//! A real browser drives the officers' console: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/test`) opens the page served by `borderlane demo`, is shown the
//! login form, logs in with the officer's token, sees decisions arrive live, filters by port, opens a row's
//! reasons, renders a right-to-left name isolated in a `<bdi>` (identifiers and names are text, never HTML),
//! orders and marks decisions that carry a business-resumption `priority`, holds new decisions while the
//! pointer is over the list or the list is paused (so rows do not slide under a click), saves a screenshot to
//! `target/browser/` (the README's `docs/console.png`), and logs out.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, however it ends.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for<F, Fut>(what: &str, mut f: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_live_decisions_filters_and_reasons() {
    let (chromium, driver) = (
        Path::new("/usr/bin/chromium"),
        Path::new("/usr/bin/chromedriver"),
    );
    assert!(
        chromium.exists() && driver.exists(),
        "headless Chromium is needed: run scripts/test, which installs Debian's chromium and chromium-driver"
    );
    let (web, admin, metrics, wd) = (free_port(), free_port(), free_port(), free_port());
    const OFFICER: &str = "browser-officer-token-0123456789";
    let _demo = Guard(
        Command::new(env!("CARGO_BIN_EXE_borderlane"))
            .args([
                "demo",
                "--manifests",
                "2000",
                "--rate",
                "40",
                "--duration",
                "120",
            ])
            .args([
                "--listen",
                &format!("127.0.0.1:{web}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--metrics-listen",
                &format!("127.0.0.1:{metrics}"),
            ])
            .args([
                "--audit",
                &std::env::temp_dir()
                    .join(format!("bl-browser-{web}.jsonl"))
                    .to_string_lossy(),
            ])
            .env("BORDERLANE_ADMIN_TOKEN", "browser-test-token-0123456789")
            .env("BORDERLANE_OFFICER_TOKEN", OFFICER)
            .stdout(Stdio::null())
            .spawn()
            .expect("start borderlane demo"),
    );
    let _driver = Guard(
        Command::new(driver)
            .arg(format!("--port={wd}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    wait_port(web);
    wait_port(wd);
    let profile = std::env::temp_dir().join(format!("bl-chromium-{wd}"));
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1600,1000", format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{wd}"))
        .await
        .expect("connect to chromedriver");
    c.goto(&format!("http://127.0.0.1:{web}/")).await.unwrap();

    // Not logged in: the console is the login form. A wrong token keeps it; the officer's token opens it.
    let form = c
        .find(Locator::Css("form[action='/login'] input[name=token]"))
        .await
        .unwrap();
    form.send_keys("not-the-token-0123456789").await.unwrap();
    c.find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the refusal", || async {
        let t = c.find(Locator::Css(".err")).await.ok()?.text().await.ok()?;
        t.contains("Unknown token").then_some(t)
    })
    .await;
    let form = c.find(Locator::Css("input[name=token]")).await.unwrap();
    form.send_keys(OFFICER).await.unwrap();
    c.find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Decisions appear live.
    wait_for("live rows", || async {
        let rows = c.find_all(Locator::Css("#rows tr")).await.ok()?;
        (rows.len() >= 5).then(|| rows.len().to_string())
    })
    .await;

    // The port filter: pick a port from the menu the stats endpoint filled; every row shown is then that port.
    let port = wait_for("port options", || async {
        let opts = c.find_all(Locator::Css("#f-port option")).await.ok()?;
        for o in opts {
            let v = o.attr("value").await.ok()??;
            if v == "2304" {
                return Some(v);
            }
        }
        None
    })
    .await;
    c.execute(
        "const s = document.getElementById('f-port'); s.value = arguments[0]; s.dispatchEvent(new Event('change'));",
        vec![serde_json::json!(port)],
    )
    .await
    .unwrap();
    let shown = wait_for("rows at the chosen port", || async {
        let rows = c
            .find_all(Locator::Css("#rows tr td:nth-child(3)"))
            .await
            .ok()?;
        if rows.len() < 2 {
            return None;
        }
        let mut ports = Vec::new();
        for r in rows {
            ports.push(r.text().await.ok()?);
        }
        Some(ports.join(","))
    })
    .await;
    assert!(
        shown.split(',').all(|p| p == port),
        "rows for other ports after filtering: {shown}"
    );

    // A row opens its reasons, parties and FAST conditions. Live rows keep arriving above it until the
    // pointer is over the list (then they wait): a row found before the pointer got there could be another
    // one by the time the click lands, which is what holding them is for. So the officer's way: point at
    // the list first (a `mouseenter`, as the pointer's arrival gives), then aim and click.
    c.execute(
        "document.getElementById('rows').closest('table').dispatchEvent(new MouseEvent('mouseenter'));",
        vec![],
    )
    .await
    .unwrap();
    let clicked = wait_for("a row to click", || async {
        let row = c.find(Locator::Css("#rows tr")).await.ok()?;
        let id = row.attr("data-id").await.ok()??;
        row.click().await.ok()?;
        Some(id)
    })
    .await;
    let detail = wait_for("the detail panel", || async {
        let t = c
            .find(Locator::Css("#detail"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains("Why: reasons and points").then_some(t)
    })
    .await;
    assert!(detail.contains(&clicked), "{clicked} not in {detail}");
    assert!(
        detail.contains("Parties and CTPAT standing") && detail.contains("FAST conditions missing"),
        "{detail}"
    );
    assert!(detail.contains("total"), "{detail}");

    // "Record result": the officer records a seizure of the selected decision (POST /outcomes with the
    // session); the service answers with the stored record, and the header's hit rates count it.
    assert!(detail.contains("Record exam result"), "{detail}");
    c.execute(
        "document.getElementById('record-result').value = 'seizure'; \
         document.getElementById('record-findings').value = 'UNDECLARED';",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#record-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let recorded = wait_for("the recorded result", || async {
        let t = c
            .find(Locator::Css("#record-msg"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(
        recorded.starts_with("Recorded by env:BORDERLANE_OFFICER_TOKEN")
            || recorded.starts_with("Replaced the earlier result"),
        "{recorded}"
    );
    let hits = wait_for("hit rates in the header", || async {
        let t = c
            .find(Locator::Css("#randest"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains("n/a (exempt)").then_some(t)
    })
    .await;
    assert!(hits.contains("validated"), "{hits}");

    // Keyboard: arrow down moves the selection to the next row.
    c.execute("document.activeElement.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', bubbles: true}))", vec![]).await.unwrap();

    // Identifiers and names are text inside <bdi>, never HTML. A decision whose watch-list reason carries a
    // right-to-left (Arabic) name, and whose other detail carries markup, is rendered through the page's own
    // functions: the name sits isolated in its <bdi>, the markup stays text and runs nothing.
    let name = "شركة الأمل للتجارة";
    let watch = format!("shipper {name} FANTASMA EXPORTS S A is on the watch list: shell exporter");
    let markup = "<img src=x onerror=\"window.__pwned = true\"> HTS 940330";
    let decision = serde_json::json!({
        "manifest_id": "RTL-TEST-0001", "revision": 0, "port_of_entry": "2304", "mode": "truck",
        "lane": "standard", "action": "intensive", "front_of_line": false, "random_exam": false,
        "watchlist_hit": true, "score": 230, "band": "high",
        "reasons": [
            {"rule": "watchlist.name", "points": 200, "detail": watch, "shipment_id": "S1"},
            {"rule": "commodity.zero_weight", "points": 30, "detail": markup, "shipment_id": "S1"}
        ],
        "parties": [{"role": "shipper", "id": "081234567", "shipment_id": "S1", "partner_id": "CTP-0000042",
                     "status": "certified", "tier": 1, "standing": "certified"}],
        "fast": {"eligible": false, "missing": ["release"]},
        "importer_standing": "none", "policy_version": "sha256:0123"
    });
    let probe = c
        .execute(
            r#"window.__pwned = false;
               addRow(arguments[0]); show(arguments[0]);
               const d = document.getElementById('detail');
               const bdis = [...d.querySelectorAll('bdi')];
               const row = document.querySelector('#rows tr[data-id="RTL-TEST-0001"] td:nth-child(2) bdi');
               return {
                 name: bdis.filter(b => b.textContent === arguments[1])
                           .map(b => [b.parentElement.tagName, getComputedStyle(b).unicodeBidi, b.dir || 'auto']),
                 markup: bdis.filter(b => b.textContent === arguments[2]).length,
                 imgs: document.querySelectorAll('#detail img, #rows img').length,
                 pwned: window.__pwned,
                 isolated: bdis.map(b => b.textContent),
                 points: [...d.querySelector('table tbody').children].map(tr => tr.children[1].textContent),
                 row: row ? row.textContent : null
               };"#,
            vec![decision, serde_json::json!(watch), serde_json::json!(markup)],
        )
        .await
        .unwrap();
    assert_eq!(
        probe["name"],
        serde_json::json!([["TD", "isolate", "auto"]]),
        "the right-to-left name is not isolated in its own <bdi>: {probe}"
    );
    assert_eq!(
        probe["markup"], 1,
        "markup in a detail is not shown as text: {probe}"
    );
    assert_eq!(probe["imgs"], 0, "data was parsed as HTML: {probe}");
    assert_eq!(probe["pwned"], false, "data ran as script: {probe}");
    for id in [
        "RTL-TEST-0001",
        "2304",
        "081234567",
        "CTP-0000042",
        "sha256:0123",
    ] {
        assert!(
            probe["isolated"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == id),
            "{id} is not in a <bdi>: {probe}"
        );
    }
    assert_eq!(
        probe["points"],
        serde_json::json!(["+200", "+30"]),
        "{probe}"
    );
    assert_eq!(probe["row"], "RTL-TEST-0001", "{probe}");

    // A plain decision, varied by id (and priority) below.
    let plain = serde_json::json!({
        "manifest_id": "x", "revision": 0, "port_of_entry": "2304", "mode": "truck",
        "lane": "standard", "action": "release", "front_of_line": false, "random_exam": false,
        "watchlist_hit": false, "score": 0, "band": "low", "reasons": [], "parties": [],
        "fast": {"eligible": false, "missing": ["release"]},
        "importer_standing": "none", "policy_version": "sha256:0123"
    });
    // Business resumption: decisions with a priority are marked and listed first, by priority (tier 3
    // first), newest first within one; decisions without keep arriving below them. Fed through the page's
    // own addRow, as the feed would, in an order that is not the priority order.
    let prioritized = c
        .execute(
            r#"const base = arguments[0];
               for (const [id, p] of [["PRIO-N1", null], ["PRIO-4", 4], ["PRIO-1", 1], ["PRIO-3", 3],
                                      ["PRIO-N2", null], ["PRIO-2", 2], ["PRIO-1B", 1]]) {
                 const d = Object.assign({}, base, { manifest_id: id });
                 if (p !== null) d.priority = p;
                 addRow(d);
               }
               const ids = [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id);
               const mark = id => { const t = document.querySelector(`#rows tr[data-id="${id}"] .prio`); return t ? t.textContent : null; };
               return { order: ids.filter(id => id.startsWith('PRIO-')), first: ids.slice(0, 5),
                        marks: ["PRIO-1", "PRIO-2", "PRIO-3", "PRIO-4", "PRIO-N1"].map(mark) };"#,
            vec![plain.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        prioritized["order"],
        serde_json::json!([
            "PRIO-1B", "PRIO-1", "PRIO-2", "PRIO-3", "PRIO-4", "PRIO-N2", "PRIO-N1"
        ]),
        "{prioritized}"
    );
    assert_eq!(
        prioritized["first"],
        serde_json::json!(["PRIO-1B", "PRIO-1", "PRIO-2", "PRIO-3", "PRIO-4"]),
        "prioritised decisions are not at the top of the live list: {prioritized}"
    );
    assert_eq!(
        prioritized["marks"],
        serde_json::json!([
            "P1 tier 3",
            "P2 tier 2",
            "P3 tier 1",
            "P4 non-partner",
            null
        ]),
        "{prioritized}"
    );

    // New decisions wait while the pointer is over the list, so that a row does not slide away between
    // aiming and clicking; they are added when the pointer leaves. Fed through the page's own `receive`, as
    // the feed's handler does (the live feed's own decisions are held alike meanwhile).
    let pointing = c
        .execute(
            r#"const list = document.getElementById('rows').closest('table');
               list.dispatchEvent(new MouseEvent('mouseleave'));
               list.dispatchEvent(new MouseEvent('mouseenter'));
               window.__shown = [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id);
               const top = () => document.querySelector('main').getBoundingClientRect().top;
               const before = top();
               receive(Object.assign({}, arguments[0], { manifest_id: 'HOLD-1' }));
               receive(Object.assign({}, arguments[0], { manifest_id: 'HOLD-2', priority: 1 }));
               overflow += 99999; missed += 123456; showStatus();
               const longest = top();
               overflow -= 99999; missed -= 123456; showStatus();
               return { rows: [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id),
                        shown: window.__shown, held: document.getElementById('held').textContent,
                        moved: longest - before };"#,
            vec![plain.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        pointing["rows"], pointing["shown"],
        "rows moved under the pointer: {pointing}"
    );
    assert_eq!(
        pointing["held"], "2 new, shown when the pointer leaves the list",
        "{pointing}"
    );
    // However long the status line gets, nothing below it moves (the detail panel's buttons included).
    assert_eq!(pointing["moved"], 0.0, "{pointing}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left = c
        .execute(
            r#"const still = [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id);
               const list = document.getElementById('rows').closest('table');
               list.dispatchEvent(new MouseEvent('mouseleave'));
               const ids = [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id);
               return { still: JSON.stringify(still) === JSON.stringify(window.__shown), first: ids[0],
                        hold1: ids.includes('HOLD-1'), held: document.getElementById('held') !== null };"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        left,
        serde_json::json!({"still": true, "first": "HOLD-2", "hold1": true, "held": false}),
        "the list moved while pointed at, or did not take what was held when the pointer left"
    );
    // Paused: held until resumed. And at most as many wait as the list shows: past that, the one the list
    // would drop first goes (the oldest of the lowest priority), never a prioritised one.
    let paused = c
        .execute(
            r#"togglePause();
               receive(Object.assign({}, arguments[0], { manifest_id: 'HOLD-P', priority: 2 }));
               for (let i = 0; i < MAX_ROWS + 1; i++) receive(Object.assign({}, arguments[0], { manifest_id: 'HOLD-' + (100 + i) }));
               const during = { rows: [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id),
                                held: document.getElementById('held').textContent,
                                status: document.getElementById('status').firstChild.textContent,
                                waiting: ['HOLD-P', 'HOLD-100', 'HOLD-101', 'HOLD-102'].map(id => held.some(d => d.manifest_id === id)) };
               // A dropped link shows while paused too.
               link = 'reconnecting…'; showStatus();
               during.down = document.getElementById('status').firstChild.textContent;
               link = 'live';
               togglePause();
               const ids = [...document.querySelectorAll('#rows tr')].map(tr => tr.dataset.id);
               return { heldP: during.rows.includes('HOLD-P'), held: during.held, status: during.status, waiting: during.waiting,
                        down: during.down, after: document.getElementById('status').firstChild.textContent,
                        arrival: ids.indexOf('HOLD-' + (100 + MAX_ROWS)) < ids.indexOf('HOLD-' + (99 + MAX_ROWS)),
                        prioritised: ids.includes('HOLD-P') && ids.indexOf('HOLD-P') < ids.indexOf('HOLD-' + (100 + MAX_ROWS)),
                        newest: ids.includes('HOLD-' + (100 + MAX_ROWS)), count: ids.length };"#,
            vec![plain.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        paused,
        serde_json::json!({
            "heldP": false, "held": "500 new, shown when resumed (2 older ones dropped: the list holds 500)",
            "status": "paused", "down": "paused, reconnecting…", "after": "live", "arrival": true,
            "waiting": [true, false, false, true], "prioritised": true, "newest": true, "count": 500
        }),
        "{paused}"
    );

    let png = c.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console.png"), png).unwrap();

    // Changing the filters starts a new stream: what was held for the old one is dropped, not shown.
    let refiltered = c
        .execute(
            r#"const list = document.getElementById('rows').closest('table');
               list.dispatchEvent(new MouseEvent('mouseenter'));
               receive(Object.assign({}, arguments[0], { manifest_id: 'HOLD-OLD' }));
               const before = held.length;
               connect();
               list.dispatchEvent(new MouseEvent('mouseleave'));
               return { before, after: held.length, shown: !!document.querySelector('#rows tr[data-id="HOLD-OLD"]'),
                        status: document.getElementById('status').textContent };"#,
            vec![plain],
        )
        .await
        .unwrap();
    assert_eq!(
        refiltered,
        serde_json::json!({"before": 1, "after": 0, "shown": false, "status": "connecting…"}),
        "{refiltered}"
    );

    // The session cookie is HttpOnly: the page's scripts cannot read it.
    let visible = c.execute("return document.cookie;", vec![]).await.unwrap();
    assert_eq!(
        visible,
        serde_json::json!(""),
        "the session cookie is readable from scripts"
    );
    // Log out: back to the login form, and the console no longer opens.
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the login form after logout", || async {
        c.find(Locator::Css("input[name=token]"))
            .await
            .ok()
            .map(|_| String::new())
    })
    .await;
    c.goto(&format!("http://127.0.0.1:{web}/")).await.unwrap();
    assert!(c.find(Locator::Css("input[name=token]")).await.is_ok());
    assert!(c.find(Locator::Css("#rows")).await.is_err());
    c.close().await.unwrap();
}
