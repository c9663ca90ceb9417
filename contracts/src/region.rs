//! AWS regions and the names EC2 gives hosts in them.

/// Commercial AWS regions, so that a typo is caught by `init` instead of by a DNS failure.
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
];

pub fn is_known(region: &str) -> bool {
    REGIONS.contains(&region)
}

/// The domain EC2 puts in private DNS names: us-east-1 is the historical exception.
pub fn internal_domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{region}.compute.internal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_east_1_uses_the_legacy_domain() {
        assert_eq!(internal_domain("us-east-1"), "ec2.internal");
        assert_eq!(internal_domain("eu-west-2"), "eu-west-2.compute.internal");
    }

    #[test]
    fn typos_are_unknown() {
        assert!(is_known("us-east-2"));
        assert!(!is_known("us-east-7"));
        assert!(!is_known("useast2"));
    }
}
