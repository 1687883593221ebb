//! SCIM errors as RFC 7644 §3.12 defines them: an HTTP status, an optional `scimType`, a
//! `detail` that says what was wrong and what to do.

/// `scimType`: the kind of a 400 (or 409, 412) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    /// The filter syntax was invalid or names an unknown attribute or operator.
    InvalidFilter,
    /// More results than the server will return.
    TooMany,
    /// A unique attribute's value is taken (409).
    Uniqueness,
    /// An attempt to change an immutable or read-only attribute.
    Mutability,
    /// The body does not parse or breaks the schema.
    InvalidSyntax,
    /// A PATCH path is malformed or names an unknown attribute.
    InvalidPath,
    /// A PATCH path's filter matched nothing.
    NoTarget,
    /// A value is missing, of the wrong type, or not allowed.
    InvalidValue,
    /// The `version` does not match (`If-Match`).
    InvalidVers,
    /// A sensitive value was sent where it must not be.
    Sensitive,
}

/// An error the SCIM endpoint answers, or a SCIM service answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" ({t:?})")).unwrap_or_default())]
pub struct ScimError {
    /// HTTP status.
    pub status: u16,
    /// The kind of error, for 400s and a few others.
    pub scim_type: Option<ScimType>,
    /// What was wrong and what to do.
    pub detail: String,
}

/// The schema URN of an error body.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

impl ScimError {
    /// A 400 of this kind.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// A status without a `scimType` (404, 401, 403, 413, 429, 500, …).
    pub fn status(status: u16, detail: impl Into<String>) -> ScimError {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// The error body: `status` is a string, as RFC 7644 §3.12 has it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [ERROR_URN],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = serde_json::to_value(t).unwrap_or_default();
        }
        body
    }

    /// Reads an error body a SCIM service sent (`status` as a string or a number), if it is one.
    pub fn from_json(body: &serde_json::Value) -> Option<ScimError> {
        let status = match body.get("status")? {
            serde_json::Value::String(s) => s.trim().parse().ok()?,
            serde_json::Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
            _ => return None,
        };
        Some(ScimError {
            status,
            scim_type: body
                .get("scimType")
                .and_then(|t| serde_json::from_value(t.clone()).ok()),
            detail: body
                .get("detail")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string(),
        })
    }
}
