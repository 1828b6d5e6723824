//! The API tokens page (Zabbix's *Users → API tokens*) served on 127.0.0.1, with three users and
//! a few tokens:
//!
//! ```text
//! cargo run -p api-tokens-axum --example page
//! ```
//!
//! then open <http://127.0.0.1:3000/> and sign in as `alice` (who manages everyone's tokens),
//! `bob` or `carol`. `API_TOKENS_PAGE_ADDR=127.0.0.1:8080` serves elsewhere.

mod demo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("API_TOKENS_PAGE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let tokens = demo::tokens();
    // A wrong or missing hash key is an error here, at startup, not a lockout later.
    tokens.check_hash_keys()?;
    demo::seed(&tokens)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "The API tokens page: http://{}/ (users: {})",
        listener.local_addr()?,
        demo::USERS.join(", ")
    );
    axum::serve(listener, demo::app(tokens)).await?;
    Ok(())
}
