//! The region and the AppConfigData and STS endpoints (wire.md §2–3): overrides, FIPS,
//! dual-stack and China names. Used by `settings` only.

use super::*;

/// The regional endpoint of `service` (`appconfigdata`, `sts`) in `region`, per wire.md §2:
/// `amazonaws.com` (`amazonaws.com.cn` in `cn-*`); FIPS adds `-fips` to the service label except
/// in `us-gov-*`, where the plain name is already FIPS; dual-stack uses `api.aws`
/// (`api.amazonwebservices.com.cn` in China). No trailing slash.
pub fn regional_endpoint(service: &str, region: &str, fips: bool, dual_stack: bool) -> String {
    let is_china = region.starts_with("cn-");
    let label = if fips && !region.starts_with("us-gov-") {
        format!("{service}-fips")
    } else {
        service.to_string()
    };
    let domain = match (dual_stack, is_china) {
        (false, false) => "amazonaws.com",
        (false, true) => "amazonaws.com.cn",
        (true, false) => "api.aws",
        (true, true) => "api.amazonwebservices.com.cn",
    };
    format!("https://{label}.{region}.{domain}")
}

/// `SERVICE_REGION` (either spelling), else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub(super) fn read_region(
    reader: &mut Reader<'_>,
    is_local_development: bool,
) -> Result<String, SettingsError> {
    let found = reader
        .agent_setting(&["SERVICE_REGION"])
        .or_else(|| reader.plain("AWS_REGION"))
        .or_else(|| reader.plain("AWS_DEFAULT_REGION"));
    let Some(found) = found else {
        if is_local_development {
            return Ok(String::new());
        }
        return Err(SettingsError {
            variable: "AWS_REGION".to_string(),
            message: "no region is set; set AWS_REGION, AWS_DEFAULT_REGION or SERVICE_REGION \
                      (AWS_APPCONFIG_EXTENSION_SERVICE_REGION), for example AWS_REGION=us-east-1"
                .to_string(),
        });
    };
    let text = found.text();
    let well_formed = text.len() <= 64
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if !well_formed {
        return Err(
            found.invalid("give a region name of letters, digits and dashes, such as us-east-1")
        );
    }
    Ok(text.to_string())
}

/// Endpoints of AppConfigData and STS (wire.md §2, §3): the service-specific override, then
/// `AWS_ENDPOINT_URL`, then the regional name. A configured endpoint is used as written, so FIPS
/// and dual-stack only shape computed names. Empty when no region is set (local development).
pub(super) fn read_endpoints(
    reader: &mut Reader<'_>,
    region: &str,
) -> Result<(String, String), SettingsError> {
    let fips = match reader.plain("AWS_USE_FIPS_ENDPOINT") {
        Some(found) => parse_bool(&found)?,
        None => false,
    };
    let dual_stack = match reader.plain("AWS_USE_DUALSTACK_ENDPOINT") {
        Some(found) => parse_bool(&found)?,
        None => false,
    };
    let resolve = |service: &str, variable: &str| -> Result<String, SettingsError> {
        let configured = reader
            .plain(variable)
            .or_else(|| reader.plain("AWS_ENDPOINT_URL"));
        match configured {
            Some(found) => parse_endpoint_url(&found),
            None if region.is_empty() => Ok(String::new()),
            None => Ok(regional_endpoint(service, region, fips, dual_stack)),
        }
    };
    let appconfigdata = resolve("appconfigdata", "AWS_ENDPOINT_URL_APPCONFIGDATA")?;
    let sts = resolve("sts", "AWS_ENDPOINT_URL_STS")?;
    Ok((appconfigdata, sts))
}

pub(super) fn parse_endpoint_url(found: &Found<'_>) -> Result<String, SettingsError> {
    let text = found.text();
    if !has_http_authority(text) {
        return Err(found.invalid(
            "give a URL starting with http:// or https://, such as http://127.0.0.1:4566",
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// `http://` or `https://` (any case) followed by a host, with no whitespace anywhere.
pub(super) fn has_http_authority(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with(['/', '?', '#'])
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// The URL with any `user:password@` replaced by `****@`, for messages and logs.
pub(super) fn mask_url_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}****{}", &url[..authority_start], &rest[at..]),
        None => url.to_string(),
    }
}
