//! Random run names like `brave-otter`, for runs the user did not name.

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "daring", "eager",
    "fancy", "gentle", "glad", "golden", "happy", "hardy", "jolly", "keen", "kind", "lively",
    "lucky", "merry", "mighty", "misty", "noble", "plucky", "proud", "quick", "quiet", "rapid",
    "rosy", "rustic", "shiny", "silent", "silver", "sleek", "smooth", "snowy", "solid", "spry",
    "steady", "sunny", "swift", "tidy", "vivid", "warm", "wild", "wise", "witty", "zesty",
];

const ANIMALS: &[&str] = &[
    "badger", "bat", "bear", "beaver", "bison", "bobcat", "crane", "crow", "deer", "dolphin",
    "eagle", "falcon", "ferret", "finch", "fox", "gecko", "goat", "goose", "hare", "hawk", "heron",
    "ibis", "jaguar", "koala", "lark", "lemur", "lion", "llama", "lynx", "marten", "mink", "moose",
    "newt", "orca", "osprey", "otter", "owl", "panda", "puffin", "quail", "rabbit", "raven",
    "robin", "salmon", "seal", "shark", "sloth", "sparrow", "stork", "swan", "tiger", "toad",
    "trout", "turtle", "viper", "walrus", "weasel", "whale", "wolf", "yak",
];

/// A random `adjective-animal` name.
pub fn random_name() -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
    let a = usize::from(u16::from_le_bytes([bytes[0], bytes[1]])) % ADJECTIVES.len();
    let b = usize::from(u16::from_le_bytes([bytes[2], bytes[3]])) % ANIMALS.len();
    format!("{}-{}", ADJECTIVES[a], ANIMALS[b])
}

/// Whether `name` is acceptable as a run name (the one rule, [`moat_home::check_run_name`]).
pub fn validate_name(name: &str) -> Result<(), String> {
    moat_home::check_run_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_are_valid() {
        for _ in 0..200 {
            let name = random_name();
            assert!(validate_name(&name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "-x", "a b", "a/b", "run_abc", "é", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["feature-auth", "test", "a.b_c-1"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }
}
