use std::collections::HashMap;

use crate::client::Aws;
use crate::error::{AwsResultExt, CloudError};
use crate::identity::{CLUSTER_TAG, RESOURCE_TAG};

/// ELBv2 names are unique per account and region, but describe calls cannot filter by tag:
/// of the resources found by name, keep those carrying this cluster's identity for `logical`,
/// and refuse a same-named resource that belongs to someone else.
pub async fn owned_by_name<T: crate::find::AwsResource>(
    aws: &Aws,
    name: &str,
    logical: &str,
    found: Vec<T>,
) -> Result<Vec<T>, CloudError> {
    if found.is_empty() {
        return Ok(found);
    }
    let arns: Vec<String> = found.iter().map(|r| r.id()).collect();
    let described = aws.elb.describe_tags().set_resource_arns(Some(arns)).send().await.api("DescribeTags")?;
    let tags: HashMap<&str, HashMap<&str, &str>> = described
        .tag_descriptions()
        .iter()
        .map(|d| {
            let pairs = d.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))).collect();
            (d.resource_arn().unwrap_or_default(), pairs)
        })
        .collect();
    let ours = |arn: &str| {
        tags.get(arn).is_some_and(|t| {
            t.get(CLUSTER_TAG) == Some(&aws.identity.cluster.as_str()) && t.get(RESOURCE_TAG) == Some(&logical)
        })
    };
    let (mine, foreign): (Vec<T>, Vec<T>) = found.into_iter().partition(|r| ours(&r.id()));
    if mine.is_empty() && !foreign.is_empty() {
        return Err(CloudError::Foreign { kind: T::KIND.label(), name: name.into(), logical: logical.into() });
    }
    Ok(mine)
}
