//! Records as the telemetry codec sees them: a *shape* (keys, nesting, leaf kinds) and a list of
//! leaves (number and string texts, exactly as written), for JSON objects and CSV rows alike.
//!
//! Parsing keeps every byte needed to rebuild the input: number texts and string contents
//! (escapes included) are kept verbatim, and a record is only taken apart when writing its parts
//! back gives the input byte for byte (compact JSON; CSV without stray quotes). Anything else is a
//! verbatim record.

/// One token of a record's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `{`, the number of members follows as that many `Key`s each followed by a value.
    Obj(u32),
    /// `[` with this many elements.
    Arr(u32),
    /// An object key (raw contents between the quotes).
    Key(Vec<u8>),
    /// A number leaf.
    Num,
    /// A string leaf.
    Str,
    /// `true`, `false`, `null`.
    Lit(u8),
    /// A CSV row with this many cells (each a `Key` column name then a leaf).
    Row(u32),
    /// An empty CSV cell.
    Empty,
}

/// A record taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Structure, in document order.
    pub shape: Vec<Shape>,
    /// Leaf texts, in document order (numbers as written; strings without their quotes for
    /// JSON, whole cells for CSV).
    pub leaves: Vec<Vec<u8>>,
}

const MAX_DEPTH: usize = 32;

/// Parses a compact JSON object. `None` when it is not one or would not be rebuilt exactly.
pub fn parse_json(s: &[u8]) -> Option<Parsed> {
    let mut p = Parser {
        s,
        i: 0,
        out: Parsed {
            shape: Vec::with_capacity(s.len() / 8),
            leaves: Vec::with_capacity(s.len() / 16),
        },
    };
    if s.first() != Some(&b'{') {
        return None;
    }
    p.value(0)?;
    if p.i != s.len() {
        return None;
    }
    let out = p.out;
    let mut back = Vec::with_capacity(s.len());
    write(&out, &[], &mut back);
    (back == s).then_some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    out: Parsed,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let at = self.out.shape.len();
                self.out.shape.push(Shape::Obj(0));
                let mut n = 0u32;
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let k = self.string()?;
                    self.out.shape.push(Shape::Key(k));
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    self.value(depth + 1)?;
                    n += 1;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            self.out.shape[at] = Shape::Obj(n);
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let at = self.out.shape.len();
                self.out.shape.push(Shape::Arr(0));
                let mut n = 0u32;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    n += 1;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            self.out.shape[at] = Shape::Arr(n);
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let v = self.string()?;
                self.out.shape.push(Shape::Str);
                self.out.leaves.push(v);
                Some(())
            }
            b't' | b'f' | b'n' => {
                for (lit, word) in [(0u8, &b"true"[..]), (1, b"false"), (2, b"null")] {
                    if self.s[self.i..].starts_with(word) {
                        self.i += word.len();
                        self.out.shape.push(Shape::Lit(lit));
                        return Some(());
                    }
                }
                None
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.i += 1;
                }
                let text = &self.s[start..self.i];
                if !is_json_number(text) {
                    return None;
                }
                self.out.shape.push(Shape::Num);
                self.out.leaves.push(text.to_vec());
                Some(())
            }
            _ => None,
        }
    }

    /// A string's raw contents (escapes kept), after its closing quote.
    fn string(&mut self) -> Option<Vec<u8>> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.i += 2,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let v = self.s.get(start..self.i)?.to_vec();
        self.i += 1;
        std::str::from_utf8(&v).ok()?;
        Some(v)
    }
}

fn is_json_number(t: &[u8]) -> bool {
    let mut i = 0;
    if t.get(i) == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while t.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == int_start || (t[int_start] == b'0' && i - int_start > 1) {
        return false;
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        let f = i;
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == f {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e = i;
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == t.len()
}

/// Splits a CSV row into cells (quoted cells keep their quotes). `None` for a row with broken
/// quoting, which is then sent verbatim.
pub fn split_csv(row: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut cells = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        if row.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match row.get(i)? {
                    b'"' if row.get(i + 1) == Some(&b'"') => i += 2,
                    b'"' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else {
            while let Some(&c) = row.get(i) {
                if c == b',' {
                    break;
                }
                if c == b'"' || c == b'\n' || c == b'\r' {
                    return None;
                }
                i += 1;
            }
        }
        cells.push(row[start..i].to_vec());
        match row.get(i) {
            None => return Some(cells),
            Some(b',') => i += 1,
            Some(_) => return None,
        }
    }
}

/// A CSV row under `header` (column names; fewer or more cells get empty names).
pub fn parse_csv(row: &[u8], header: &[Vec<u8>]) -> Option<Parsed> {
    if row.first() == Some(&b'{') {
        return None;
    }
    let cells = split_csv(row)?;
    let mut shape = Vec::with_capacity(cells.len() * 2 + 1);
    let mut leaves = Vec::new();
    shape.push(Shape::Row(cells.len() as u32));
    for (i, c) in cells.into_iter().enumerate() {
        shape.push(Shape::Key(header.get(i).cloned().unwrap_or_default()));
        if c.is_empty() {
            shape.push(Shape::Empty);
        } else if is_json_number(&c) {
            shape.push(Shape::Num);
            leaves.push(c);
        } else {
            shape.push(Shape::Str);
            leaves.push(c);
        }
    }
    Some(Parsed { shape, leaves })
}

/// Writes a record back: JSON (compact) or a CSV row.
pub fn write(p: &Parsed, _header: &[Vec<u8>], out: &mut Vec<u8>) {
    write_parts(&p.shape, &p.leaves, out);
}

/// Writes a record given as its shape and leaves (see [`write()`]).
pub fn write_parts(shape: &[Shape], leaves: &[Vec<u8>], out: &mut Vec<u8>) {
    let mut leaves = leaves.iter();
    let mut i = 0;
    write_value(shape, &mut i, &mut leaves, out);
}

fn write_value<'a>(shape: &[Shape], i: &mut usize, leaves: &mut impl Iterator<Item = &'a Vec<u8>>, out: &mut Vec<u8>) {
    let Some(s) = shape.get(*i) else { return };
    *i += 1;
    match s {
        Shape::Obj(n) => {
            out.push(b'{');
            for k in 0..*n {
                if k > 0 {
                    out.push(b',');
                }
                if let Some(Shape::Key(key)) = shape.get(*i) {
                    out.push(b'"');
                    out.extend_from_slice(key);
                    out.extend_from_slice(b"\":");
                    *i += 1;
                }
                write_value(shape, i, leaves, out);
            }
            out.push(b'}');
        }
        Shape::Arr(n) => {
            out.push(b'[');
            for k in 0..*n {
                if k > 0 {
                    out.push(b',');
                }
                write_value(shape, i, leaves, out);
            }
            out.push(b']');
        }
        Shape::Row(n) => {
            for k in 0..*n {
                if k > 0 {
                    out.push(b',');
                }
                if let Some(Shape::Key(_)) = shape.get(*i) {
                    *i += 1;
                }
                write_value(shape, i, leaves, out);
            }
        }
        Shape::Key(_) => {}
        Shape::Num => out.extend_from_slice(leaves.next().map_or(&[][..], Vec::as_slice)),
        Shape::Str => {
            let v = leaves.next().map_or(&[][..], Vec::as_slice);
            // JSON strings carry quotes around their contents; CSV cells are whole.
            if shape.first().is_some_and(|s| matches!(s, Shape::Row(_))) {
                out.extend_from_slice(v);
            } else {
                out.push(b'"');
                out.extend_from_slice(v);
                out.push(b'"');
            }
        }
        Shape::Lit(l) => out.extend_from_slice([&b"true"[..], b"false", b"null"][usize::from(*l).min(2)]),
        Shape::Empty => {}
    }
}

/// Field paths of a shape's leaves (`hotspots.0.rssi`, CSV column names), in leaf order, and
/// whether each is a number.
pub fn leaf_paths(shape: &[Shape]) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    paths_value(shape, &mut i, &mut path, &mut out);
    out
}

fn paths_value(shape: &[Shape], i: &mut usize, path: &mut Vec<Vec<u8>>, out: &mut Vec<(Vec<u8>, bool)>) {
    let Some(s) = shape.get(*i) else { return };
    *i += 1;
    let name = |path: &[Vec<u8>]| path.join(&b'.');
    match s {
        Shape::Obj(n) | Shape::Row(n) => {
            for _ in 0..*n {
                let key = match shape.get(*i) {
                    Some(Shape::Key(k)) => {
                        *i += 1;
                        k.clone()
                    }
                    _ => Vec::new(),
                };
                path.push(key);
                paths_value(shape, i, path, out);
                path.pop();
            }
        }
        Shape::Arr(n) => {
            for k in 0..*n {
                path.push(k.to_string().into_bytes());
                paths_value(shape, i, path, out);
                path.pop();
            }
        }
        Shape::Num => out.push((name(path), true)),
        Shape::Str => out.push((name(path), false)),
        Shape::Key(_) | Shape::Lit(_) | Shape::Empty => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_exactly() {
        let s = br#"{"a":1,"b":[1.5,-2e3,"x\"y"],"c":{"d":null,"e":true},"f":[],"g":{}}"#;
        let p = parse_json(s).expect("parses");
        let mut back = Vec::new();
        write(&p, &[], &mut back);
        assert_eq!(back, s);
        let paths: Vec<String> = leaf_paths(&p.shape)
            .iter()
            .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(paths, ["a", "b.0", "b.1", "b.2"]);
    }

    #[test]
    fn non_compact_or_broken_json_is_refused() {
        for s in [
            &br#"{"a": 1}"#[..],
            br#"{"a":01}"#,
            br#"{"a":1"#,
            br#"{"a":1}x"#,
            b"[1]",
            br#"{"a":tru}"#,
            b"{",
        ] {
            assert!(parse_json(s).is_none(), "{}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn csv_rows_round_trip() {
        let header = vec![b"t".to_vec(), b"v".to_vec()];
        for row in [
            &b"2023-01-04T21:31:22.173Z,7.0,,\"a,\"\"b\"\"\",+5"[..],
            b"",
            b",",
            b"1",
        ] {
            let p = parse_csv(row, &header).expect("parses");
            let mut back = Vec::new();
            write(&p, &header, &mut back);
            assert_eq!(back, row);
        }
        assert!(parse_csv(b"a\"b", &header).is_none());
        assert!(parse_csv(b"\"open", &header).is_none());
    }
}
