//! Test-data tables for the generator: common HTS lines with plausible weights and values, company name
//! parts, origin and transit countries. Realistic shapes for generated traffic, not policy.

/// One commodity line the generator draws from.
pub struct HtsLine {
    pub hts: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    /// Weight range per line, kg.
    pub kg: (f64, f64),
    /// Plausible declared value per kg, USD.
    pub usd_per_kg: (f64, f64),
}

const fn line(
    hts: &'static str,
    description: &'static str,
    unit: &'static str,
    kg: (f64, f64),
    usd_per_kg: (f64, f64),
) -> HtsLine {
    HtsLine {
        hts,
        description,
        unit,
        kg,
        usd_per_kg,
    }
}

pub const HTS_LINES: &[HtsLine] = &[
    line(
        "847130",
        "laptop computers",
        "CTN",
        (100.0, 3000.0),
        (60.0, 250.0),
    ),
    line(
        "847150",
        "computer processing units",
        "CTN",
        (100.0, 2000.0),
        (40.0, 200.0),
    ),
    line(
        "847330",
        "computer parts and accessories",
        "CTN",
        (50.0, 2000.0),
        (20.0, 150.0),
    ),
    line(
        "851712",
        "mobile telephones",
        "CTN",
        (50.0, 800.0),
        (150.0, 900.0),
    ),
    line(
        "852872",
        "television receivers",
        "PCS",
        (500.0, 8000.0),
        (15.0, 60.0),
    ),
    line(
        "850440",
        "static converters, power supplies",
        "CTN",
        (100.0, 3000.0),
        (10.0, 80.0),
    ),
    line(
        "854442",
        "insulated electric conductors with connectors",
        "RL",
        (200.0, 5000.0),
        (8.0, 40.0),
    ),
    line(
        "853710",
        "electric control panels",
        "PCS",
        (100.0, 3000.0),
        (20.0, 120.0),
    ),
    line(
        "854231",
        "integrated circuits, processors",
        "CTN",
        (5.0, 200.0),
        (500.0, 8000.0),
    ),
    line(
        "870899",
        "motor vehicle parts",
        "PLT",
        (500.0, 12000.0),
        (4.0, 30.0),
    ),
    line(
        "870840",
        "gear boxes for motor vehicles",
        "PCS",
        (1000.0, 15000.0),
        (6.0, 25.0),
    ),
    line(
        "870829",
        "vehicle body parts",
        "PLT",
        (500.0, 10000.0),
        (3.0, 20.0),
    ),
    line(
        "870323",
        "passenger vehicles 1500-3000 cc",
        "UNT",
        (1200.0, 2500.0),
        (10.0, 25.0),
    ),
    line(
        "840734",
        "spark-ignition engines",
        "PCS",
        (1000.0, 10000.0),
        (8.0, 30.0),
    ),
    line(
        "841810",
        "refrigerator-freezers",
        "PCS",
        (1000.0, 12000.0),
        (4.0, 12.0),
    ),
    line(
        "842139",
        "filtering machinery for gases",
        "PCS",
        (200.0, 4000.0),
        (10.0, 60.0),
    ),
    line(
        "940161",
        "upholstered seats with wooden frames",
        "PCS",
        (500.0, 8000.0),
        (5.0, 20.0),
    ),
    line(
        "940360",
        "wooden furniture",
        "PCS",
        (500.0, 10000.0),
        (3.0, 15.0),
    ),
    line(
        "392690",
        "articles of plastics",
        "CTN",
        (200.0, 8000.0),
        (3.0, 25.0),
    ),
    line(
        "392321",
        "plastic sacks and bags",
        "BAL",
        (1000.0, 15000.0),
        (1.5, 6.0),
    ),
    line(
        "401110",
        "new pneumatic tyres for cars",
        "PCS",
        (2000.0, 15000.0),
        (3.0, 9.0),
    ),
    line(
        "730890",
        "structures of iron or steel",
        "PCS",
        (2000.0, 20000.0),
        (1.5, 6.0),
    ),
    line(
        "721049",
        "galvanised flat-rolled steel",
        "COIL",
        (10000.0, 25000.0),
        (0.8, 2.0),
    ),
    line(
        "731815",
        "threaded screws and bolts of steel",
        "CTN",
        (500.0, 10000.0),
        (2.0, 8.0),
    ),
    line(
        "760421",
        "aluminium hollow profiles",
        "BDL",
        (1000.0, 15000.0),
        (3.0, 8.0),
    ),
    line(
        "070200",
        "tomatoes, fresh",
        "CTN",
        (5000.0, 20000.0),
        (0.8, 2.5),
    ),
    line(
        "070993",
        "squash, fresh",
        "CTN",
        (5000.0, 20000.0),
        (0.6, 2.0),
    ),
    line(
        "080440",
        "avocados, fresh",
        "CTN",
        (5000.0, 20000.0),
        (1.5, 4.0),
    ),
    line(
        "081010",
        "strawberries, fresh",
        "CTN",
        (3000.0, 15000.0),
        (2.0, 6.0),
    ),
    line(
        "080610",
        "grapes, fresh",
        "CTN",
        (5000.0, 20000.0),
        (1.5, 4.5),
    ),
    line(
        "220300",
        "beer made from malt",
        "CS",
        (5000.0, 20000.0),
        (0.8, 2.0),
    ),
    line("220830", "whiskies", "CS", (1000.0, 10000.0), (8.0, 40.0)),
    line(
        "610910",
        "cotton T-shirts, knitted",
        "CTN",
        (200.0, 5000.0),
        (8.0, 40.0),
    ),
    line(
        "620342",
        "men's cotton trousers",
        "CTN",
        (200.0, 5000.0),
        (10.0, 50.0),
    ),
    line(
        "640399",
        "leather footwear",
        "CTN",
        (200.0, 4000.0),
        (15.0, 80.0),
    ),
    line(
        "420221",
        "leather handbags",
        "CTN",
        (50.0, 1000.0),
        (30.0, 300.0),
    ),
    line(
        "330499",
        "beauty and skin-care preparations",
        "CTN",
        (100.0, 3000.0),
        (10.0, 120.0),
    ),
    line(
        "300490",
        "packaged medicaments",
        "CTN",
        (50.0, 2000.0),
        (50.0, 2000.0),
    ),
    line(
        "294200",
        "organic compounds, other",
        "DR",
        (100.0, 5000.0),
        (5.0, 200.0),
    ),
    line(
        "381210",
        "prepared rubber accelerators",
        "DR",
        (1000.0, 15000.0),
        (2.0, 8.0),
    ),
    line(
        "480511",
        "semi-chemical fluting paper",
        "RL",
        (5000.0, 20000.0),
        (0.4, 1.2),
    ),
    line("950300", "toys", "CTN", (200.0, 6000.0), (4.0, 25.0)),
    line(
        "910211",
        "wrist-watches, electrically operated",
        "CTN",
        (10.0, 300.0),
        (100.0, 2000.0),
    ),
    line(
        "711319",
        "jewellery of precious metal",
        "CTN",
        (1.0, 50.0),
        (2000.0, 40000.0),
    ),
    line(
        "930200",
        "revolvers and pistols",
        "CS",
        (10.0, 300.0),
        (200.0, 1500.0),
    ),
    line("360410", "fireworks", "CTN", (500.0, 5000.0), (3.0, 15.0)),
    line(
        "240220",
        "cigarettes containing tobacco",
        "CS",
        (500.0, 8000.0),
        (20.0, 80.0),
    ),
    line(
        "090111",
        "coffee, not roasted",
        "BAG",
        (5000.0, 20000.0),
        (3.0, 8.0),
    ),
    line(
        "170199",
        "cane or beet sugar",
        "BAG",
        (10000.0, 25000.0),
        (0.4, 1.0),
    ),
    line("100590", "maize", "BLK", (20000.0, 60000.0), (0.15, 0.4)),
];

pub const NAME_A: &[&str] = &[
    "Acme",
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Maquila",
    "Aurora",
    "Sierra",
    "Pacifico",
    "Nordic",
    "Delta",
    "Monterrey",
    "Bajio",
    "Cascade",
    "Great Lakes",
    "Sonora",
    "Tijuana",
    "Laurentian",
    "Prairie",
    "Atlas",
    "Vega",
    "Perez",
    "Garcia",
    "Smith",
    "Tremblay",
    "Nguyen",
    "Kim",
    "Tanaka",
    "Schmidt",
    "Rossi",
    "Silva",
];

pub const NAME_B: &[&str] = &[
    "Imports",
    "Logistics",
    "Manufacturing",
    "Industrial",
    "Trading",
    "Components",
    "Foods",
    "Automotive",
    "Electronics",
    "Textiles",
    "Distribution",
    "Supply",
    "Produce",
    "Metals",
    "Plastics",
    "Exports",
];

/// Origins of sea and air cargo, weighted by repetition.
pub const SEA_ORIGINS: &[&str] = &[
    "CN", "CN", "CN", "CN", "VN", "VN", "KR", "JP", "DE", "IN", "TW", "IT", "TH", "MY", "ID", "GB",
    "FR", "NL", "BR", "CO", "PE", "CL", "TR", "BD", "PK", "ES", "IE", "CH", "SG", "PH",
];

/// Transshipment countries.
pub const TRANSITS: &[&str] = &[
    "PA", "AE", "MY", "VN", "TR", "HN", "GT", "VE", "SG", "NL", "BE", "MA",
];

/// IATA airline codes for air cargo carriers.
pub const AIR_CARRIERS: &[&str] = &["AA", "UA", "DL", "FX", "5X", "LH", "KE", "CX", "EK", "QR"];

/// A unique 4-letter SCAC for index `k` (< 26^4): `k` in base 26.
pub fn scac(k: usize) -> String {
    let k = k % (26 * 26 * 26 * 26);
    [k / 17_576, k / 676 % 26, k / 26 % 26, k % 26]
        .iter()
        .map(|d| (b'A' + *d as u8) as char)
        .collect()
}

/// A unique 3-character broker filer code for pool index `k` (< 36^3).
pub fn filer_code(k: usize) -> String {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let k = k % (36 * 36 * 36);
    [ALNUM[k / 1296], ALNUM[k / 36 % 36], ALNUM[k % 36]]
        .iter()
        .map(|b| *b as char)
        .collect()
}
