//! KCS synthetic customs declarations (`shared/data/kcs/`) converted into borderlane manifests and labels:
//! one declaration → one manifest with one shipment and one commodity line, and one label record.
//!
//! Every mapping of a Korean field onto the US-shaped wire format is a constant here and is documented in
//! `docs/model.md`. Conversion is total: a row that cannot be converted is an error, never skipped.

use anyhow::{bail, Context};
use borderlane_core::codes::{Country, Hts, PortCode};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{Carrier, Commodity, Manifest, Mode, Party, Shipment, Str};
use serde::{Deserialize, Serialize};

/// Fixed exchange rate for `Item Price` (KRW) → `value_usd`: the 2020 annual average, rounded
/// (about 1,180 won per dollar). One fixed rate keeps converted values comparable across the periods.
pub const KRW_PER_USD: f64 = 1180.0;

/// KCS customs office → a port of the default policy's port table. The seven busiest offices of the data
/// keep a port of their own (sea and air ports only: Korean imports arrive by sea or air, and border
/// ports would bring FAST-lane logic that has no meaning here); every other office shares `2720`.
pub const OFFICE_PORTS: &[(&str, &str)] = &[
    ("40", "4701"), // busiest office, mostly air entries → JFK Airport
    ("20", "2704"), // → Los Angeles
    ("30", "2709"), // → Long Beach
    ("16", "1001"), // → New York
    ("13", "4601"), // → Newark
    ("10", "1703"), // → Savannah
    ("33", "5301"), // → Houston
];
/// The port every other office maps to (Los Angeles International Airport).
pub const OTHER_OFFICES_PORT: &str = "2720";

/// The declaring country: a `ZZ` (unknown) origin with an unknown departure too is recorded as domestic.
const DECLARING_COUNTRY: &str = "KR";

/// One CSV row, by the file's header names.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    #[serde(rename = "Declaration ID")]
    pub declaration_id: String,
    #[serde(rename = "Date")]
    pub date: String,
    #[serde(rename = "Office ID")]
    pub office: String,
    #[serde(rename = "Process Type")]
    pub process_type: String,
    #[serde(rename = "Import Type")]
    pub import_type: String,
    #[serde(rename = "Import Use")]
    pub import_use: String,
    #[serde(rename = "Payment Type")]
    pub payment_type: String,
    #[serde(rename = "Mode of Transport")]
    pub transport: String,
    #[serde(rename = "Declarant ID")]
    pub declarant: String,
    #[serde(rename = "Importer ID")]
    pub importer: String,
    #[serde(rename = "Seller ID")]
    pub seller: String,
    #[serde(rename = "Courier ID")]
    pub courier: String,
    #[serde(rename = "HS6 Code")]
    pub hs6: String,
    #[serde(rename = "Country of Departure")]
    pub departure: String,
    #[serde(rename = "Country of Origin")]
    pub origin: String,
    #[serde(rename = "Tax Rate")]
    pub tax_rate: f64,
    #[serde(rename = "Tax Type")]
    pub tax_type: String,
    #[serde(rename = "Country of Origin Indicator")]
    pub origin_indicator: String,
    #[serde(rename = "Net Mass")]
    pub net_mass: f64,
    #[serde(rename = "Item Price")]
    pub item_price: f64,
    #[serde(rename = "Fraud")]
    pub fraud: u8,
    #[serde(rename = "Critical Fraud")]
    pub critical: u8,
}

/// The label of one manifest: what inspection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub manifest_id: String,
    /// 1 when inspection found fraud.
    pub fraud: u8,
    /// KCS critical-fraud grade: 0 none, 1 fraud, 2 critical; ≥ 1 exactly when `fraud` is 1.
    pub critical: u8,
}

/// What a conversion did, counted so nothing can go missing unnoticed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub rows: u64,
    pub manifests: u64,
    pub labels: u64,
    pub frauds: u64,
    /// Rows whose origin was `ZZ` (unknown) and took the departure country instead.
    pub origin_from_departure: u64,
    /// Rows whose origin and departure were both unknown; origin recorded as the declaring country.
    pub origin_domestic: u64,
    /// Rows whose departure was `ZZ` (left absent).
    pub departure_unknown: u64,
    /// Rows whose office has no port of its own (mapped to [`OTHER_OFFICES_PORT`]).
    pub other_offices: u64,
}

/// UN/ECE Recommendation 19 modes, as KCS writes them (×10): 1 sea, 2 rail, 3 road, 4 air, 5 mail,
/// 9 other. Mail travels by air; "other" is counted as ocean, the commonest mode.
pub fn transport_mode(code: &str) -> Option<Mode> {
    Some(match code {
        "10" => Mode::Ocean,
        "20" => Mode::Rail,
        "30" => Mode::Truck,
        "40" | "50" => Mode::Air,
        "90" => Mode::Ocean,
        _ => return None,
    })
}

/// The port a KCS office maps to, and whether it is one of the named offices.
pub fn office_port(office: &str) -> (&'static str, bool) {
    OFFICE_PORTS
        .iter()
        .find(|(o, _)| *o == office)
        .map_or((OTHER_OFFICES_PORT, false), |(_, p)| (*p, true))
}

fn code(s: &str) -> Option<Str> {
    let s = s.trim();
    (!s.is_empty()).then(|| Str::from(s))
}

fn party(id: &str) -> Option<Party> {
    code(id).map(|id| Party {
        id,
        name: None,
        country: None,
    })
}

/// Converts one row; `report` counts the substitutions.
pub fn convert(row: &Row, report: &mut Report) -> anyhow::Result<(Manifest, Label)> {
    let id = row.declaration_id.trim();
    if id.is_empty() {
        bail!("empty Declaration ID");
    }
    let manifest_id = format!("KCS-{id}");
    let filed_at = Timestamp::parse(&format!("{}T00:00:00Z", row.date.trim()))
        .with_context(|| format!("Date {:?} is not YYYY-MM-DD", row.date))?;
    let mode = transport_mode(row.transport.trim())
        .with_context(|| format!("unknown Mode of Transport {:?}", row.transport))?;
    let (port, named) = office_port(row.office.trim());
    if !named {
        report.other_offices += 1;
    }
    let port_of_entry =
        PortCode::parse(port).with_context(|| format!("bad port {port:?} in the office table"))?;
    let hts = Hts::parse(row.hs6.trim()).with_context(|| format!("bad HS6 Code {:?}", row.hs6))?;
    let departure = Country::parse(row.departure.trim());
    if departure.is_none() {
        if row.departure.trim() != "ZZ" {
            bail!("bad Country of Departure {:?}", row.departure);
        }
        report.departure_unknown += 1;
    }
    let origin = match Country::parse(row.origin.trim()) {
        Some(c) => c,
        None if row.origin.trim() == "ZZ" => match departure {
            Some(d) => {
                report.origin_from_departure += 1;
                d
            }
            None => {
                report.origin_domestic += 1;
                Country::parse(DECLARING_COUNTRY).context("declaring country")?
            }
        },
        None => bail!("bad Country of Origin {:?}", row.origin),
    };
    if row.fraud > 1 || row.critical > 2 || (row.fraud == 1) != (row.critical >= 1) {
        bail!(
            "inconsistent labels Fraud={} Critical Fraud={}",
            row.fraud,
            row.critical
        );
    }
    for (name, v) in [
        ("Net Mass", row.net_mass),
        ("Item Price", row.item_price),
        ("Tax Rate", row.tax_rate),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{name} {v} is not a finite non-negative number");
        }
    }
    let seller = party(&row.seller);
    let manifest = Manifest {
        schema_version: None,
        manifest_id: Str::from(manifest_id.as_str()),
        revision: 0,
        filed_at,
        mode,
        port_of_entry,
        estimated_arrival: None,
        carrier: code(&row.courier).map(|scac| Carrier { scac, name: None }),
        conveyance: None,
        drivers: Vec::new(),
        equipment: Vec::new(),
        shipments: vec![Shipment {
            shipment_id: Str::from(format!("{manifest_id}-1")),
            importer: party(&row.importer),
            consignee: None,
            shipper: seller.clone(),
            manufacturer: seller,
            broker: party(&row.declarant),
            origin_country: origin,
            transit_countries: Vec::new(),
            departure_country: departure,
            commodities: vec![Commodity {
                hts,
                description: Str::from(format!("KCS declaration, HS6 {}", row.hs6.trim())),
                quantity: None,
                unit: None,
                weight_kg: Some(row.net_mass),
                value_usd: Some(row.item_price / KRW_PER_USD),
                entry_type: code(&row.import_type),
                process_type: code(&row.process_type),
                import_use: code(&row.import_use),
                payment_type: code(&row.payment_type),
                duty_rate: Some(row.tax_rate),
                duty_type: code(&row.tax_type),
                origin_preference: code(&row.origin_indicator),
            }],
        }],
    };
    let label = Label {
        manifest_id,
        fraud: row.fraud,
        critical: row.critical,
    };
    Ok((manifest, label))
}

/// Converts a whole CSV into NDJSON manifests and labels (the `learn` feature: it brings the csv reader). Every written manifest is parsed back through
/// the strict wire parser; the counts of rows, manifests and labels must agree.
#[cfg(feature = "learn")]
pub fn import(
    csv_input: impl std::io::Read,
    mut manifests: impl std::io::Write,
    mut labels: impl std::io::Write,
) -> anyhow::Result<Report> {
    use borderlane_core::wire::{parse_manifest, Limits};
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_input);
    let limits = Limits::default();
    let mut report = Report::default();
    let mut line = Vec::with_capacity(1024);
    for (i, record) in reader.deserialize::<Row>().enumerate() {
        // Header is line 1.
        let row_no = i + 2;
        let row = record.with_context(|| format!("CSV line {row_no}"))?;
        report.rows += 1;
        let (manifest, label) = convert(&row, &mut report)
            .with_context(|| format!("CSV line {row_no} (declaration {})", row.declaration_id))?;
        line.clear();
        serde_json::to_writer(&mut line, &manifest)?;
        parse_manifest(&line, &limits).map_err(|e| {
            anyhow::anyhow!("CSV line {row_no}: converted manifest does not parse: {e}")
        })?;
        line.push(b'\n');
        manifests.write_all(&line)?;
        report.manifests += 1;
        serde_json::to_writer(&mut labels, &label)?;
        labels.write_all(b"\n")?;
        report.labels += 1;
        report.frauds += u64::from(label.fraud);
    }
    manifests.flush()?;
    labels.flush()?;
    if report.rows != report.manifests || report.rows != report.labels {
        bail!(
            "conversion lost rows: {} rows, {} manifests, {} labels",
            report.rows,
            report.manifests,
            report.labels
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_un_rec_19() {
        assert_eq!(transport_mode("10"), Some(Mode::Ocean));
        assert_eq!(transport_mode("40"), Some(Mode::Air));
        assert_eq!(transport_mode("50"), Some(Mode::Air));
        assert_eq!(transport_mode("30"), Some(Mode::Truck));
        assert_eq!(transport_mode("11"), None);
    }

    #[test]
    fn every_office_port_is_in_the_default_policy() {
        let policy = crate::load::policy::default_policy();
        for port in OFFICE_PORTS
            .iter()
            .map(|(_, p)| *p)
            .chain([OTHER_OFFICES_PORT])
        {
            let code = PortCode::parse(port).unwrap();
            assert!(
                policy.port(code).is_some(),
                "{port} not in the default policy"
            );
        }
    }
}
