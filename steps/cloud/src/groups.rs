//! The cluster's security groups wherever they are handled (`sg`, the teardown): how they are
//! listed, and what deleting one needs: AWS refuses to delete a group that another group's
//! rule names, so two groups that name each other go only once those rules are revoked.

use aws_sdk_ec2::types::{IpPermission, SecurityGroup};

use crate::client::Aws;
use crate::error::{AwsResultExt, CloudError};

/// Every security group tagged as the cluster's, whatever its logical name, in one call: `sg`
/// tells them apart by role, the teardown deletes them all.
pub async fn cluster_groups(aws: &Aws) -> Result<Vec<SecurityGroup>, CloudError> {
    let request = aws.ec2().describe_security_groups().filters(aws.identity().cluster_filter());
    Ok(request.send().await.api("DescribeSecurityGroups")?.security_groups().to_vec())
}

/// Revokes the group's ingress rules that name a group (its own included), keeping its range
/// rules; a group that is gone already has none.
pub async fn revoke_group_references(aws: &Aws, group_id: &str) -> Result<(), CloudError> {
    let described = aws.ec2().describe_security_groups().group_ids(group_id).send().await.api("DescribeSecurityGroups");
    let groups = match described {
        Ok(out) => out.security_groups().to_vec(),
        Err(e) if e.code().is_some_and(|c| c.ends_with("NotFound")) => return Ok(()),
        Err(e) => return Err(e),
    };
    let references: Vec<IpPermission> = groups
        .iter()
        .flat_map(|g| g.ip_permissions())
        .filter(|p| !p.user_id_group_pairs().is_empty())
        .map(|p| {
            IpPermission::builder()
                .set_ip_protocol(p.ip_protocol().map(String::from))
                .set_from_port(p.from_port())
                .set_to_port(p.to_port())
                .set_user_id_group_pairs(Some(p.user_id_group_pairs().to_vec()))
                .build()
        })
        .collect();
    if references.is_empty() {
        return Ok(());
    }
    let request = aws.ec2().revoke_security_group_ingress().group_id(group_id).set_ip_permissions(Some(references));
    request.send().await.api("RevokeSecurityGroupIngress")?;
    Ok(())
}
