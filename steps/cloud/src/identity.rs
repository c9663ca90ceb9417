use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

/// The tag that says which cluster owns a resource.
pub const CLUSTER_TAG: &str = "groundup:cluster";
/// The tag that says which of the cluster's resources it is (its logical name).
pub const RESOURCE_TAG: &str = "groundup:resource";

/// The one tag scheme: `Name` for people, and an identity pair (cluster, logical name) that
/// finds a resource again. Lookups use only the identity pair, so editing `Name` or adding
/// tags by hand never makes a step create a duplicate.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cluster: String,
}

impl Identity {
    pub fn new(cluster: &str) -> Self {
        Identity { cluster: cluster.to_string() }
    }

    pub fn tags(&self, logical: &str, name: &str) -> Vec<(String, String)> {
        vec![
            ("Name".into(), name.into()),
            (CLUSTER_TAG.into(), self.cluster.clone()),
            (RESOURCE_TAG.into(), logical.into()),
        ]
    }

    pub fn ec2_tags(&self, logical: &str, name: &str) -> Vec<Tag> {
        self.tags(logical, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
    }

    /// Tags applied by the create call itself, so there is never an untagged window.
    pub fn tag_spec(&self, resource: ResourceType, logical: &str, name: &str) -> TagSpecification {
        TagSpecification::builder().resource_type(resource).set_tags(Some(self.ec2_tags(logical, name))).build()
    }

    pub fn filters(&self, logical: &str) -> Vec<Filter> {
        vec![self.cluster_filter(), Filter::builder().name(format!("tag:{RESOURCE_TAG}")).values(logical).build()]
    }

    /// The filter of a describe call that lists every resource of the cluster, whatever its
    /// logical name.
    pub fn cluster_filter(&self) -> Filter {
        Filter::builder().name(format!("tag:{CLUSTER_TAG}")).values(&self.cluster).build()
    }

    pub fn elb_tags(&self, logical: &str, name: &str) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
        self.tags(logical, name)
            .into_iter()
            .map(|(k, v)| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build())
            .collect()
    }

    /// Whether a tag list carries this cluster's identity for `logical`.
    pub fn matches(&self, tags: &[Tag], logical: &str) -> bool {
        let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
        has(CLUSTER_TAG, &self.cluster) && has(RESOURCE_TAG, logical)
    }
}

impl Identity {
    /// An idempotency token for create calls that take one: the same for a retry or a re-run
    /// after a crash, different once `scope` changes (e.g. the VPC or subnet it hangs off is
    /// replaced), so that a token never resurrects a deleted resource. FNV-1a keeps it stable
    /// across builds and within the 64 characters AWS allows.
    pub fn client_token(&self, logical: &str, scope: &str) -> String {
        let text = format!("{}/{logical}/{scope}", self.cluster);
        let hash =
            text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("groundup-{logical}-{hash:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_and_scoped() {
        let identity = Identity::new("k8s-cluster");
        let token = identity.client_token("master-0", "subnet-1/0");
        assert_eq!(token, identity.client_token("master-0", "subnet-1/0"));
        assert_ne!(token, identity.client_token("master-0", "subnet-2/0"));
        assert_ne!(token, identity.client_token("master-1", "subnet-1/0"));
        assert_ne!(token, Identity::new("other").client_token("master-0", "subnet-1/0"));
        assert!(token.len() <= 64);
    }
}
