//! Password hashing with argon2id (the crate's defaults are OWASP's recommended
//! m=19 MiB, t=2, p=1; hashing runs off the async workers), and the rules for a new password:
//! long enough and not guessable (zxcvbn, which knows common passwords, names and patterns).
//! No composition rules; pasting and password managers are welcome.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

pub const MIN_LENGTH: usize = 10;
const MAX_LENGTH: usize = 256;

/// At most one Argon2 computation per core at a time: each takes 19 MiB, so a burst of 32
/// sign-ins queues here instead of holding 600 MiB at once that the allocator then keeps
/// (measured in BENCHMARKS.md); more at once would not finish any sooner on the same cores.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |cores| cores.get()))
});

/// Checks a new password; `personal` are words the person's own details give away.
pub fn check_new(password: &str, personal: &[&str]) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("Password must be at least {MIN_LENGTH} characters long"));
    }
    if length > MAX_LENGTH {
        return Err(format!("Password must be {MAX_LENGTH} characters or fewer"));
    }
    let mut words: Vec<&str> = personal.iter().flat_map(|w| w.split(|c: char| !c.is_alphanumeric())).collect();
    words.retain(|w| w.len() > 2);
    let lower = password.to_lowercase();
    if words.iter().any(|w| w.len() > 3 && lower.contains(&w.to_lowercase())) {
        return Err("Choose a password that does not contain your name or email address".into());
    }
    let estimate = zxcvbn::zxcvbn(password, &words);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "It would be too easy to guess.".into());
        return Err(format!(
            "Choose a password that is harder to guess. {hint} A few unrelated words together work well."
        ));
    }
    Ok(())
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    let _turn = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&rand::rng().random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await?
}

pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
    let _turn = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?
}

/// A password for a person to be given once: 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::check_new;

    #[test]
    fn short_common_and_personal_passwords_are_refused() {
        assert!(check_new("short", &[]).unwrap_err().contains("at least 10"));
        assert!(check_new("password123", &[]).unwrap_err().contains("harder to guess"));
        assert!(check_new("qwertyuiop", &[]).is_err());
        assert!(check_new("jordanellis2024", &["Jordan Ellis", "jordan.ellis@learner.example"]).is_err());
        assert!(check_new("violet tractor spoon harbour", &[]).is_ok());
        assert!(check_new(&super::generate(), &[]).is_ok());
    }
}
