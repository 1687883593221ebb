#!/usr/bin/env python3
"""Adds the realm's OpenID Connect token endpoint to the Keycloak Admin REST API document, so that
Prism's validating proxy in front of the Keycloak simulator also passes (and checks) the token
request the `keycloak` connector makes before any admin call.

The Admin REST API document (shared/specs/keycloak-23.0.0-admin-openapi.json) describes
`/admin/realms/...` only; the token endpoint `/realms/{realm}/protocol/openid-connect/token` belongs
to Keycloak's OpenID Connect endpoints, which have no OpenAPI document. The operation added here is
RFC 6749 §4.4 (client credentials: a form with grant_type, client_id, client_secret), its answer
§5.1 (access_token, token_type, expires_in; Keycloak adds refresh_expires_in, not-before-policy and
scope) and its errors §5.2 (error, error_description) on 400, 401 and 404 ("Realm does not exist").
Nothing of the Admin API's own paths is changed.

Usage: keycloak_token_endpoint.py IN.json OUT.json
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
d = json.load(open(src))
oauth_error = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
token = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string"},
        "expires_in": {"type": "integer"},
        "refresh_expires_in": {"type": "integer"},
        "not-before-policy": {"type": "integer"},
        "scope": {"type": "string"},
    },
}
form = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {"type": "string"},
    },
}
error = lambda why: {"description": why, "content": {"application/json": {"schema": oauth_error}}}
d["paths"]["/realms/{realm}/protocol/openid-connect/token"] = {
    "parameters": [{"name": "realm", "in": "path", "required": True, "schema": {"type": "string"}}],
    "post": {
        "tags": ["OpenID Connect (added)"],
        "summary": "Client credentials grant (RFC 6749 §4.4); not part of the Admin REST API document",
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        },
        "responses": {
            "200": {"description": "A token", "content": {"application/json": {"schema": token}}},
            "400": error("unsupported_grant_type, invalid_request"),
            "401": error("invalid_client, unauthorized_client"),
            "404": error("Realm does not exist"),
        },
    },
}
json.dump(d, open(dst, "w"))
print(f"{len(d['paths'])} paths, the realm's token endpoint included, written to {dst}")
