//! The README's first command: issue a token, use it, and watch every rule apply.
//!
//! `cargo run --example quickstart`

use std::error::Error;

use api_tokens::{
    Actor, Denial, Grant, NewToken, Permission, Policy, RequestContext, Tokens, UserId,
};
use time::{Duration, OffsetDateTime};

fn show(what: &str, result: &Result<Grant, Denial>) {
    match result {
        Ok(g) => println!(
            "{what}: granted to {} via token {} ({}) with [{}]",
            g.owner, g.token, g.name, g.permissions
        ),
        // Log the detailed reason; tell the client only the public form.
        Err(d) => println!("{what}: refused ({d}); client is told: {}", d.public()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let tokens = Tokens::in_memory().with_policy(Policy::default());
    let alice = Actor::user(UserId::new("alice")?);

    let issued = tokens.issue(
        &alice,
        NewToken::new("deploy-bot".parse()?)
            .description("CI deploys")
            .permissions("dns.*, mail.send".parse()?)
            .expires_at(OffsetDateTime::now_utc() + Duration::days(30))
            .allowlist("10.0.0.0/8, 2001:db8::/32".parse()?),
    )?;
    let token = &issued.token;
    println!(
        "issued token {} \"{}\" for {}: permissions [{}], allowlist [{}], expires in 30 days",
        token.id, token.name, token.owner, token.permissions, token.allowlist
    );
    let secret = issued.secret;
    println!(
        "secret (shown once, {} characters): {}…",
        secret.expose().len(),
        &secret.expose()[..8]
    );

    let office = RequestContext::from_ip("10.20.30.40".parse()?);
    let elsewhere = RequestContext::from_ip("203.0.113.7".parse()?);
    let allowed = tokens.authenticate(secret.expose(), &office);
    show("from 10.20.30.40", &allowed);
    show(
        "from 203.0.113.7",
        &tokens.authenticate(secret.expose(), &elsewhere),
    );

    let grant = allowed?;
    for needed in ["dns.edit", "billing.read"] {
        let p: Permission = needed.parse()?;
        match grant.require(&p) {
            Ok(()) => println!("require {needed}: ok"),
            Err(d) => println!("require {needed}: refused ({d})"),
        }
    }

    let fresh = tokens
        .generate(&alice, [token.id])?
        .pop()
        .ok_or("no secret")?
        .1;
    println!("regenerated token {}", token.id);
    show("old secret", &tokens.authenticate(secret.expose(), &office));
    show("new secret", &tokens.authenticate(fresh.expose(), &office));
    let seen = tokens.get(&alice, token.id)?;
    if let Some(last) = seen.last_use {
        println!(
            "last used from {}",
            last.ip.map_or("-".into(), |ip| ip.to_string())
        );
    }
    Ok(())
}
