//! Address ranges as administrators write them: a single address (`192.0.2.7`, `2001:db8::1`)
//! or a CIDR range (`10.0.0.0/8`), in allow-lists and trusted-proxy lists alike.

use ipnet::IpNet;

/// Parses a single address (a /32 or /128 range) or a CIDR range; the error names the value and
/// the forms accepted.
pub fn parse_range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| {
        format!("{s:?} is not an address or a CIDR range; write e.g. 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32")
    })
}

/// `#[serde(deserialize_with = "roster_http::addr::ranges")]` for a list of addresses or ranges.
pub fn ranges<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw: Vec<String> = serde::Deserialize::deserialize(d)?;
    raw.iter()
        .map(|s| parse_range(s))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_addresses_and_cidr_ranges_are_both_ranges() {
        let one = parse_range("192.0.2.7").unwrap();
        assert!(one.contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        assert!(!one.contains(&"192.0.2.8".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(parse_range("2001:db8::1").unwrap().prefix_len(), 128);
        assert_eq!(parse_range(" 10.0.0.0/8 ").unwrap().prefix_len(), 8);
        let bad = parse_range("10.0.0.0/33").unwrap_err();
        assert!(bad.contains("10.0.0.0/33") && bad.contains("CIDR"), "{bad}");
        assert!(parse_range("intranet").is_err());
    }
}
