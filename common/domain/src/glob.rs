//! IAM-style globs (`*` any run, `?` one character), without recursion.
//!
//! Both functions run in bounded memory and never recurse, so no input can overflow a worker's stack;
//! callers still cap their inputs first (an action is at most 128 characters, a queue name 80), which
//! bounds the time too.

/// Whether `text` matches `pattern` (`*` any run, `?` one byte), case-sensitively.
///
/// The classic two-pointer matcher: O(len(pattern) · len(text)) time at worst, O(1) memory.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was in the pattern, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more byte and retry from just after it.
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether two globs can match a common string (so a guardrail `iam:Pass*` catches `iam:*Role`).
///
/// Dynamic programming over suffixes, computed bottom-up: O(len(p) · len(q)) time and memory. Callers
/// bound both lengths (actions are at most 128 characters).
pub fn intersect(p: &[u8], q: &[u8]) -> bool {
    let (n, m) = (p.len(), q.len());
    let width = m + 1;
    // can[i * width + j]: p[i..] and q[j..] can match a common string.
    let mut can = vec![false; (n + 1) * width];
    can[n * width + m] = true;
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                continue;
            }
            let at = |i: usize, j: usize| can[i * width + j];
            let v = if i < n && p[i] == b'*' {
                // The star matches nothing, or one more character of what q produces.
                at(i + 1, j) || (j < m && at(i, j + 1))
            } else if j < m && q[j] == b'*' {
                at(i, j + 1) || (i < n && at(i + 1, j))
            } else if i < n && j < m {
                (p[i] == b'?' || q[j] == b'?' || p[i] == q[j]) && at(i + 1, j + 1)
            } else {
                false
            };
            can[i * width + j] = v;
        }
    }
    can[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert!(matches(b"a-*", b"a-"));
        assert!(matches(b"a-*-z", b"a-123-z"));
        assert!(!matches(b"a-*", b"b-1"));
        assert!(matches(b"*", b"anything"));
        assert!(matches(b"*", b""));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*a*b*c*", b"xxaxxbxxcxx"));
        assert!(!matches(b"*a*b*c*", b"xxaxxcxxbxx"));
        assert!(matches(b"stack-reply-*", b"stack-reply-"));
        assert!(!matches(b"stack-reply-*", b"stack-access-requests"));
    }

    #[test]
    fn intersection() {
        assert!(intersect(b"*", b"passrole"));
        assert!(intersect(b"pass*", b"*role"));
        assert!(intersect(b"get?bject", b"getobject"));
        assert!(!intersect(b"get*", b"put*"));
        assert!(!intersect(b"passrole", b"getrole"));
        assert!(intersect(b"a*c", b"ab*"));
        assert!(intersect(b"", b""));
        assert!(intersect(b"*", b""));
        assert!(!intersect(b"a", b""));
    }

    /// Agrees with a brute force over every short string on a small alphabet.
    #[test]
    fn intersection_agrees_with_brute_force() {
        let alphabet = [b'a', b'b', b'*', b'?'];
        let mut globs: Vec<Vec<u8>> = vec![vec![]];
        for len in 1..=3 {
            let mut next = Vec::new();
            for g in globs.iter().filter(|g| g.len() == len - 1) {
                for c in alphabet {
                    let mut h = g.clone();
                    h.push(c);
                    next.push(h);
                }
            }
            globs.extend(next);
        }
        let mut words: Vec<Vec<u8>> = vec![vec![]];
        for len in 1..=5 {
            let mut next = Vec::new();
            for w in words.iter().filter(|w| w.len() == len - 1) {
                for c in [b'a', b'b'] {
                    let mut x = w.clone();
                    x.push(c);
                    next.push(x);
                }
            }
            words.extend(next);
        }
        for p in &globs {
            for q in &globs {
                let brute = words.iter().any(|w| matches(p, w) && matches(q, w));
                assert_eq!(intersect(p, q), brute, "{:?} {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(q));
            }
        }
    }

    /// 300,000-character inputs on a thread with a small stack: no recursion, so no overflow.
    #[test]
    fn huge_inputs_do_not_overflow_a_small_stack() {
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let text = "a".repeat(300_000);
                let mut pattern = "*".repeat(10);
                pattern.push('b');
                assert!(!matches(pattern.as_bytes(), text.as_bytes()));
                assert!(matches(b"*", text.as_bytes()));
                let long_glob = "a*".repeat(150);
                assert!(intersect(long_glob.as_bytes(), b"*b"));
            })
            .unwrap();
        handle.join().unwrap();
    }
}
