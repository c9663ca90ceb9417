//! The machine image: the course's (Ubuntu, by owner and name pattern) or one given by id.

use super::*;

pub(super) async fn resolve_image(aws: &Aws, context: &Context) -> Result<String, CloudError> {
    let region = &context.cluster.region;
    match &context.params.image {
        ImageSelector::Id { id } => {
            let missing = || CloudError::BadParam {
                field: "params.image.id",
                message: format!("image {id} does not exist in {region}"),
            };
            match aws.ec2().describe_images().image_ids(id).send().await.api("DescribeImages") {
                Ok(out) if !out.images().is_empty() => Ok(id.clone()),
                Ok(_) => Err(missing()),
                Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidAMIID")) => Err(missing()),
                Err(e) => Err(e),
            }
        }
        ImageSelector::Newest { owner, name_pattern } => newest_image(aws, owner, name_pattern, region).await,
    }
}

/// The newest by CreationDate (then by name); the default Ubuntu lookup keeps LTS releases only.
async fn newest_image(aws: &Aws, owner: &str, pattern: &str, region: &str) -> Result<String, CloudError> {
    let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
    let out = aws
        .ec2()
        .describe_images()
        .owners(owner)
        .filters(filter("name", pattern))
        .filters(filter("architecture", "x86_64"))
        .filters(filter("root-device-type", "ebs"))
        .filters(filter("state", "available"))
        .send()
        .await
        .api("DescribeImages")?;
    let lts_only = wants_lts_only(pattern);
    let newest =
        out.images().iter().filter(|i| !lts_only || i.name().is_some_and(is_lts_name)).max_by_key(|i| {
            (i.creation_date().unwrap_or_default().to_string(), i.name().unwrap_or_default().to_string())
        });
    let image = newest.ok_or_else(|| {
        let message = format!(
            "no image of owner {owner} named like `{pattern}` (x86_64, EBS{}) in {region}",
            if lts_only { ", LTS" } else { "" }
        );
        CloudError::BadParam { field: "params.image", message }
    })?;
    tracing::info!("compute: image {} ({})", image.image_id().unwrap_or_default(), image.name().unwrap_or_default());
    Ok(image.image_id().unwrap_or_default().to_string())
}
