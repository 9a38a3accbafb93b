//! OpenID Connect providers (IAM's CreateOpenIDConnectProvider and friends) and the web
//! identity tokens they issue, as STS's AssumeRoleWithWebIdentity checks them: a Kubernetes
//! service-account token (or any OIDC ID token) assumes a role whose trust policy names the
//! provider as its `Federated` principal.
//!
//! ferrokms does not fetch anything from the issuer: the provider's signing keys (a JWKS
//! document) are given to it, inline or from a file, with `FerrokmsAdmin.PutOpenIDConnectProviderKeys`
//! (`ferrokms admin put-oidc-keys`).

use base64::Engine;
use kms_api::{Empty, Exception};
use kms_crypto::jws::{JwsKey, verify_jws};
use kms_store::{OidcProviderAttributes, PrincipalAttributes, PrincipalRecord, PrincipalType};
use serde_json::Value;

use super::{Params, error, no_such_entity, tags_xml};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::new_principal_id;
use crate::query::xml_escape;
use crate::service::{RequestContext, Service};
use crate::sts::iso8601_seconds;

/// Most audiences (client ids) a provider accepts, and thumbprints it records (IAM's quotas).
const CLIENT_IDS: usize = 100;
const THUMBPRINTS: usize = 5;
/// Longest JWKS document accepted.
const JWKS_MAX: usize = 64 * 1024;

/// The provider name an issuer URL gives (`https://` removed, no trailing `/`), as IAM names
/// providers in ARNs and condition keys (`<name>:sub`).
pub fn provider_name(url: &str) -> Option<&str> {
    let name = url.strip_prefix("https://")?.trim_end_matches('/');
    let ok = !name.is_empty() && name.len() <= 255 && !name.contains(['?', '#', ' ']);
    ok.then_some(name)
}

/// A JWKS document's keys, by `kid` (absent ids as empty).
///
/// # Errors
/// A message naming what is wrong with the document.
pub fn parse_jwks(text: &str) -> Result<Vec<(String, JwsKey)>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("the JWKS document is not JSON: {e}"))?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS document has no \"keys\" array")?;
    let b64 = |v: Option<&Value>, name: &str| -> Result<Vec<u8>, String> {
        let s = v.and_then(Value::as_str).ok_or_else(|| format!("a key has no \"{name}\""))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| format!("a key's \"{name}\" is not base64url"))
    };
    let mut out = Vec::new();
    for key in keys {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let parsed = match key.get("kty").and_then(Value::as_str) {
            Some("RSA") => JwsKey::Rsa { n: b64(key.get("n"), "n")?, e: b64(key.get("e"), "e")? },
            Some("EC") => JwsKey::Ec {
                curve: key.get("crv").and_then(Value::as_str).unwrap_or_default().to_owned(),
                x: b64(key.get("x"), "x")?,
                y: b64(key.get("y"), "y")?,
            },
            // Keys of other types (or for encryption) cannot sign tokens STS accepts.
            _ => continue,
        };
        if key.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        out.push((kid, parsed));
    }
    if out.is_empty() {
        return Err("the JWKS document has no RSA or EC signing key".to_owned());
    }
    Ok(out)
}

/// A web identity token's claims, once its signature is checked.
#[derive(Debug)]
pub struct WebIdentity {
    /// The provider's ARN.
    pub provider_arn: String,
    /// The provider's name (`iss` without `https://`).
    pub provider: String,
    /// `sub`.
    pub subject: String,
    /// The `aud` that matched one of the provider's client ids.
    pub audience: String,
    /// Every claim, for the `<provider>:<claim>` condition keys.
    pub claims: serde_json::Map<String, Value>,
}

fn invalid_token(message: impl Into<String>) -> ServiceError {
    error(Exception::InvalidIdentityToken, message)
}

impl Service {
    /// Checks a web identity token for a role in `account`: a provider registered there for
    /// its issuer, a signature by one of the provider's keys, not expired, an audience the
    /// provider accepts.
    ///
    /// # Errors
    /// `InvalidIdentityToken`, `ExpiredTokenException` (STS's codes).
    pub(crate) async fn verify_web_identity(
        &self,
        account: &kms_core::ids::AccountId,
        token: &str,
    ) -> Result<WebIdentity, ServiceError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid_token("The web identity token is not a signed JWT."));
        };
        let decode = |part: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok();
        let header: Value = decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid_token("The web identity token's header is not valid."))?;
        let claims: serde_json::Map<String, Value> = decode(payload)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid_token("The web identity token's payload is not valid."))?;
        let signature =
            decode(signature).ok_or_else(|| invalid_token("The web identity token's signature is not valid."))?;
        let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        // Issuers are URLs; some tokens name them without the scheme.
        let issuer_url = if issuer.starts_with("https://") { issuer.to_owned() } else { format!("https://{issuer}") };
        let name = provider_name(&issuer_url)
            .ok_or_else(|| invalid_token("No OpenIDConnect provider found in your account for this token's issuer."))?;
        let arn = format!("arn:aws:iam::{account}:oidc-provider/{name}");
        let provider = self.store.principal(&arn).await?.and_then(|p| p.attributes.oidc).ok_or_else(|| {
            invalid_token(format!("No OpenIDConnect provider found in your account for {issuer_url}"))
        })?;
        let keys = provider
            .jwks
            .as_deref()
            .map(parse_jwks)
            .transpose()
            .map_err(invalid_token)?
            .ok_or_else(|| invalid_token(format!("No signing keys are registered for the provider {arn}.")))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let kid = header.get("kid").and_then(Value::as_str);
        let signing_input = token.rsplit_once('.').map(|(input, _)| input).unwrap_or_default();
        let verified = keys
            .iter()
            .filter(|(id, _)| kid.is_none_or(|k| k == id))
            .any(|(_, key)| verify_jws(alg, key, signing_input.as_bytes(), &signature));
        if !verified {
            return Err(invalid_token("The web identity token's signature could not be verified."));
        }
        let now = self.clock.now().unix_seconds();
        let exp =
            claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid_token("The token has no exp claim."))?;
        if now >= exp {
            return Err(error(
                Exception::ExpiredIdentityToken,
                "Token expired: current date/time must be before the expiration date/time.",
            ));
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| now < nbf) {
            return Err(invalid_token("The token is not valid yet (nbf)."));
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let audience = audiences
            .iter()
            .find(|a| provider.client_ids.iter().any(|c| c == *a))
            .ok_or_else(|| invalid_token("Incorrect token audience"))?
            .to_string();
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(WebIdentity { provider_arn: arn, provider: name.to_owned(), subject, audience, claims })
    }

    pub(super) async fn iam_create_oidc(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let url = p.text("Url", true, (1, 255)).unwrap_or_default();
        let client_ids: Vec<String> = p.list("ClientIDList").into_iter().map(|(_, _, v)| v.to_owned()).collect();
        let thumbprints: Vec<String> = p.list("ThumbprintList").into_iter().map(|(_, _, v)| v.to_owned()).collect();
        let tags = p.tags();
        if client_ids.len() > CLIENT_IDS {
            p.violate(
                &client_ids.len().to_string(),
                "clientIDList",
                format_args!("have length less than or equal to {CLIENT_IDS}"),
            );
        }
        if thumbprints.len() > THUMBPRINTS || thumbprints.iter().any(|t| t.len() != 40) {
            p.violate("…", "thumbprintList", "hold at most 5 thumbprints of 40 hex digits");
        }
        p.done()?;
        let name = provider_name(&url)
            .ok_or_else(|| error(Exception::InvalidInput, "The URL must begin with https:// and name a host."))?
            .to_owned();
        let account = ctx.caller.principal.account.clone();
        let arn = format!("arn:aws:iam::{account}:oidc-provider/{name}");
        self.authorize_iam(ctx, "iam:CreateOpenIDConnectProvider", &arn, RequestKeys::none()).await?;
        if self.store.principal(&arn).await?.is_some() {
            return Err(error(Exception::AlreadyExists, format!("Provider with url {url} already exists.")));
        }
        let record = PrincipalRecord {
            arn: arn.clone(),
            account,
            kind: PrincipalType::OidcProvider,
            name,
            principal_id: new_principal_id("AOIP", self.rng.as_ref()),
            trust_policy: None,
            created: self.clock.now(),
            attributes: PrincipalAttributes {
                tags,
                oidc: Some(OidcProviderAttributes { url, client_ids, thumbprints, jwks: None }),
                ..PrincipalAttributes::default()
            },
        };
        let recorded = serde_json::json!({"openIDConnectProviderArn": arn});
        self.commit(ctx, Change::CreatePrincipal(record), recorded).await?;
        Ok(Some(format!("<OpenIDConnectProviderArn>{}</OpenIDConnectProviderArn>", xml_escape(&arn))))
    }

    /// The caller's account's provider `arn`, authorized for `action`.
    async fn oidc_provider(
        &self,
        ctx: &RequestContext,
        arn: &str,
        action: &str,
    ) -> Result<PrincipalRecord, ServiceError> {
        self.authorize_iam(ctx, action, arn, RequestKeys::none()).await?;
        self.store
            .principal(arn)
            .await?
            .filter(|p| p.kind == PrincipalType::OidcProvider && p.account == ctx.caller.principal.account)
            .ok_or_else(|| no_such_entity(format!("OpenIDConnect Provider not found for arn {arn}")))
    }

    pub(super) async fn iam_get_oidc(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("OpenIDConnectProviderArn", true, (20, 2048)).unwrap_or_default();
        p.done()?;
        let provider = self.oidc_provider(ctx, &arn, "iam:GetOpenIDConnectProvider").await?;
        let oidc = provider.attributes.oidc.clone().unwrap_or_default();
        let list =
            |items: &[String]| items.iter().map(|i| format!("<member>{}</member>", xml_escape(i))).collect::<String>();
        let tags =
            if provider.attributes.tags.is_empty() { String::new() } else { tags_xml(&provider.attributes.tags) };
        Ok(Some(format!(
            "<Url>{}</Url><ClientIDList>{}</ClientIDList><ThumbprintList>{}</ThumbprintList><CreateDate>{}</CreateDate>{tags}",
            xml_escape(&provider.name),
            list(&oidc.client_ids),
            list(&oidc.thumbprints),
            iso8601_seconds(provider.created)
        )))
    }

    pub(super) async fn iam_list_oidc(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        p.done()?;
        let all = format!("arn:aws:iam::{}:oidc-provider/*", ctx.caller.principal.account);
        self.authorize_iam(ctx, "iam:ListOpenIDConnectProviders", &all, RequestKeys::none()).await?;
        let members: String = self
            .store
            .list_principals(&ctx.caller.principal.account)
            .await?
            .iter()
            .filter(|p| p.kind == PrincipalType::OidcProvider)
            .map(|p| format!("<member><Arn>{}</Arn></member>", xml_escape(&p.arn)))
            .collect();
        Ok(Some(format!("<OpenIDConnectProviderList>{members}</OpenIDConnectProviderList>")))
    }

    pub(super) async fn iam_delete_oidc(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("OpenIDConnectProviderArn", true, (20, 2048)).unwrap_or_default();
        p.done()?;
        let provider = self.oidc_provider(ctx, &arn, "iam:DeleteOpenIDConnectProvider").await?;
        let missing = format!("OpenIDConnect provider {arn}");
        self.commit(ctx, Change::DeletePrincipal { arn: provider.arn, missing }, Empty {}).await?;
        Ok(None)
    }

    pub(super) async fn iam_add_client_id(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("OpenIDConnectProviderArn", true, (20, 2048)).unwrap_or_default();
        let client_id = p.text("ClientID", true, (1, 255)).unwrap_or_default();
        p.done()?;
        let mut provider = self.oidc_provider(ctx, &arn, "iam:AddClientIDToOpenIDConnectProvider").await?;
        let oidc = provider.attributes.oidc.get_or_insert_with(OidcProviderAttributes::default);
        if !oidc.client_ids.contains(&client_id) {
            if oidc.client_ids.len() >= CLIENT_IDS {
                return Err(error(
                    Exception::LimitExceeded,
                    format!("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {CLIENT_IDS}"),
                ));
            }
            oidc.client_ids.push(client_id);
        }
        self.iam_store_principal(ctx, provider).await?;
        Ok(None)
    }

    /// `FerrokmsAdmin.PutOpenIDConnectProviderKeys`: the provider's signing keys (its JWKS
    /// document), which ferrokms does not fetch from the issuer itself.
    pub(crate) async fn put_oidc_keys(
        &self,
        ctx: &RequestContext,
        arn: &str,
        jwks: String,
    ) -> Result<(), ServiceError> {
        if jwks.len() > JWKS_MAX {
            return Err(error(Exception::Validation, format!("The JWKS document is longer than {JWKS_MAX} bytes.")));
        }
        parse_jwks(&jwks).map_err(|m| error(Exception::Validation, m))?;
        let mut provider = self.oidc_provider(ctx, arn, "iam:UpdateOpenIDConnectProviderThumbprint").await?;
        provider.attributes.oidc.get_or_insert_with(OidcProviderAttributes::default).jwks = Some(jwks);
        self.iam_store_principal(ctx, provider).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_urls_without_the_scheme() {
        assert_eq!(provider_name("https://oidc.example.com/id/ABC/"), Some("oidc.example.com/id/ABC"));
        assert_eq!(provider_name("http://oidc.example.com"), None);
        assert_eq!(provider_name("https://"), None);
    }

    #[test]
    fn jwks_documents_give_their_signing_keys() {
        let jwks = r#"{"keys":[{"kty":"RSA","kid":"a","use":"sig","n":"AQAB","e":"AQAB"},
            {"kty":"EC","kid":"b","crv":"P-256","x":"AQ","y":"Ag"},{"kty":"RSA","kid":"c","use":"enc","n":"AQ","e":"AQ"},
            {"kty":"oct","k":"AA"}]}"#;
        let keys = parse_jwks(jwks).unwrap();
        assert_eq!(keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
        assert!(parse_jwks("nope").is_err());
        assert!(parse_jwks(r#"{"keys":[{"kty":"RSA","n":"***","e":"AQAB"}]}"#).is_err());
    }
}
