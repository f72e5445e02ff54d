//! `confab init --openapi`: a spec drafted from an OpenAPI document.
