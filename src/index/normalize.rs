//! Normalized forms the index matches on: person names without case and accents (fuzzy
//! matching), and times padded so that ranges compare as strings.

/// Upper case without diacritics, for case- and accent-insensitive person name matching.
pub fn fold_name(name: &str) -> String {
    name.chars()
        .map(fold_char)
        .collect::<String>()
        .to_uppercase()
}

/// The base letter of a Latin letter with a diacritic (Latin-1 Supplement and Latin
/// Extended-A), else the character itself.
fn fold_char(c: char) -> char {
    match c {
        'À'..='Å' | 'Ā' | 'Ă' | 'Ą' => 'A',
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => 'C',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'Ď' | 'Đ' => 'D',
        'ď' | 'đ' => 'd',
        'È'..='Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => 'E',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => 'G',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'Ĥ' | 'Ħ' => 'H',
        'ĥ' | 'ħ' => 'h',
        'Ì'..='Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => 'I',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'Ĵ' => 'J',
        'ĵ' => 'j',
        'Ķ' => 'K',
        'ķ' => 'k',
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => 'L',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => 'N',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'Ò'..='Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => 'O',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'Ŕ' | 'Ŗ' | 'Ř' => 'R',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => 'S',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'Ţ' | 'Ť' | 'Ŧ' => 'T',
        'ţ' | 'ť' | 'ŧ' => 't',
        'Ù'..='Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => 'U',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'Ŵ' => 'W',
        'ŵ' => 'w',
        'Ý' | 'Ŷ' | 'Ÿ' => 'Y',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'Ź' | 'Ż' | 'Ž' => 'Z',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// A TM value (`HHMMSS.FFFFFF`, shorter forms and the old `HH:MM:SS` allowed) padded to
/// `HHMMSS.FFFFFF`, so that string comparison is time comparison.
pub fn pad_time(time: &str) -> String {
    let digits: String = time.chars().filter(|c| *c != ':').collect();
    let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
    let mut padded: String = whole.chars().take(6).collect();
    while padded.len() < 6 {
        padded.push('0');
    }
    padded.push('.');
    let mut fraction: String = fraction.chars().take(6).collect();
    while fraction.len() < 6 {
        fraction.push('0');
    }
    padded.push_str(&fraction);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_and_accents() {
        assert_eq!(fold_name("Müller^José"), "MULLER^JOSE");
        assert_eq!(fold_name("ÅSTRÖM^Øyvind"), "ASTROM^OYVIND");
    }

    #[test]
    fn times_pad_for_comparison() {
        assert_eq!(pad_time("1010"), "101000.000000");
        assert_eq!(pad_time("10:10:30.5"), "101030.500000");
        assert_eq!(pad_time("235959.123456789"), "235959.123456");
        assert!(pad_time("09") < pad_time("0930"));
    }
}
