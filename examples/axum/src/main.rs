//! `cargo run -p api-tokens-axum-example`: serves on 127.0.0.1:3000 and prints a token to try:
//! `curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:3000/zones`, or list your tokens
//! with `curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:3000/api/tokens`.

use api_tokens::{Actor, NewToken, Tokens, UserId};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokens = Tokens::in_memory();
    // A wrong or missing hash key is an error here, not a lockout at the first request (which
    // would otherwise run this check, reading the store on the executor).
    tokens.check_hash_keys()?;
    let issued = tokens.issue(
        &Actor::user(UserId::new("alice")?),
        NewToken::new("demo".parse()?).permissions("dns.*".parse()?),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("token (dns.* only): {}", issued.secret.expose());
    api_tokens_axum_example::serve(listener, tokens).await?;
    Ok(())
}
