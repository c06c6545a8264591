//! Tenants: the Microsoft 365 tenants SPScan watches, named by SPScan's own id.

use serde::{Deserialize, Serialize};

use super::limits::Limits;
use super::{bounded_text, Invalid};

/// Longest tenant id accepted.
pub const MAX_TENANT_ID: usize = 64;

/// A tenant as clients send it (`POST /tenants`, or inline in an event).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantInput, example = json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}))]
pub struct TenantInput {
    /// SPScan's id of the tenant: 1–64 letters, digits, `_`, `-` or `.`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    /// At most MAX_NAME_CHARS characters (200), not blank.
    #[schema(min_length = 1)]
    pub display_name: String,
    /// The tenant's Microsoft Entra directory id, a GUID.
    #[schema(pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")]
    pub microsoft_tenant_id: String,
}

/// A parsed tenant: every field is known to be well formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub microsoft_tenant_id: String,
}

impl Tenant {
    pub fn parse(input: TenantInput, limits: &Limits) -> Result<Self, Invalid> {
        Ok(Self {
            id: parse_tenant_id("id", &input.id)?,
            display_name: bounded_text("display_name", &input.display_name, limits.max_name)?,
            microsoft_tenant_id: parse_microsoft_tenant_id("microsoft_tenant_id", &input.microsoft_tenant_id)?,
        })
    }
}

/// SPScan's tenant id: 1–64 characters of letters, digits, `_`, `-` and `.`.
pub fn parse_tenant_id(field: &str, value: &str) -> Result<String, Invalid> {
    let ok = !value.is_empty()
        && value.len() <= MAX_TENANT_ID
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Invalid::new(
            field,
            format!("`{}` is not a tenant id; use 1–{MAX_TENANT_ID} letters, digits, `_`, `-` or `.`", clip(value)),
        ))
    }
}

/// The Entra tenant GUID (`b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd`), stored lowercase.
pub fn parse_microsoft_tenant_id(field: &str, value: &str) -> Result<String, Invalid> {
    let groups: Vec<&str> = value.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups.iter().zip(shape).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Invalid::new(
            field,
            format!("`{}` is not a GUID; expected the form b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd", clip(value)),
        ))
    }
}

/// Cuts a client value short for quoting it back in an error message.
pub(crate) fn clip(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        format!("{}…", value.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_parses_and_normalises_its_guid() {
        let tenant = Tenant::parse(TenantInput {
            id: "contoso".into(),
            display_name: " Contoso Ltd ".into(),
            microsoft_tenant_id: "B86AB9D4-FCF1-4B11-8A06-7A8F91B47FBD".into(),
        }, &Limits::default())
        .unwrap();
        assert_eq!(tenant.display_name, "Contoso Ltd");
        assert_eq!(tenant.microsoft_tenant_id, "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd");
    }

    #[test]
    fn malformed_tenant_fields_name_the_field() {
        assert_eq!(parse_tenant_id("id", "con toso").unwrap_err().field, "id");
        assert!(parse_tenant_id("id", "").is_err());
        assert!(parse_microsoft_tenant_id("m", "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbz").is_err());
        assert!(parse_microsoft_tenant_id("m", "b86ab9d4fcf14b118a067a8f91b47fbd").is_err());
    }
}
