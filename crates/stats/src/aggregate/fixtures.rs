//! Small answer sets shared by the models' unit tests (crowd-kit's test fixtures,
//! Apache-2.0, as copied in tests/conformance).

/// crowd-kit's "toy" data (the ck_dawid_skene_toy case): 5 tasks × 5 workers.
pub(crate) const TOY: [(&str, &str, &str); 24] = [
    ("t1", "w1", "no"),
    ("t2", "w1", "yes"),
    ("t3", "w1", "yes"),
    ("t4", "w1", "yes"),
    ("t5", "w1", "yes"),
    ("t1", "w2", "yes"),
    ("t2", "w2", "yes"),
    ("t3", "w2", "no"),
    ("t4", "w2", "yes"),
    ("t5", "w2", "no"),
    ("t2", "w3", "yes"),
    ("t3", "w3", "no"),
    ("t4", "w3", "yes"),
    ("t5", "w3", "no"),
    ("t1", "w4", "yes"),
    ("t2", "w4", "no"),
    ("t3", "w4", "yes"),
    ("t4", "w4", "yes"),
    ("t5", "w4", "no"),
    ("t1", "w5", "no"),
    ("t2", "w5", "no"),
    ("t3", "w5", "no"),
    ("t4", "w5", "yes"),
    ("t5", "w5", "no"),
];

/// crowd-kit's "simple" data (the ck_mmsr_simple and ck_mace_em_simple cases).
pub(crate) const SIMPLE: [(&str, &str, &str); 33] = [
    (
        "1231239876--5fac0d234ffb2f3b00893eec",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efb",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f03",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f05",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f02",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f08",
        "bde3b214b06c1efa6cb1bc6284dc72d2",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efb",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee8",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f07",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efd",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee4",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f03",
        "b17c3301ad2ccbb798716fdd405d16e8",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee8",
        "a452e450f913cfa987cad58d50393718",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893eec",
        "a452e450f913cfa987cad58d50393718",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f05",
        "a452e450f913cfa987cad58d50393718",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f02",
        "a452e450f913cfa987cad58d50393718",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f08",
        "a452e450f913cfa987cad58d50393718",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893eec",
        "0f65edea0a6dc7b9acba1dea313bbb3d",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee8",
        "0f65edea0a6dc7b9acba1dea313bbb3d",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f03",
        "0f65edea0a6dc7b9acba1dea313bbb3d",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee4",
        "0f65edea0a6dc7b9acba1dea313bbb3d",
        "chicken",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893eec",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efb",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f07",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efd",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee4",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f05",
        "0c3eb7d5fcc414db137c4180a654c06e",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efb",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893ee8",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "goose",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f02",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f08",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893f07",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "parrot",
    ),
    (
        "1231239876--5fac0d234ffb2f3b00893efd",
        "e563e2fb32fce9f00123a65a1bc78c55",
        "goose",
    ),
];

/// A table of `n_items` items with 1 to 24 ratings each from 9 annotators over three
/// labels, drawn deterministically.
pub(crate) fn scattered_table(n_items: usize) -> crate::table::AnnotationTable {
    let mut triples = Vec::new();
    for item in 0..n_items as u64 {
        let ratings = 1 + crate::aggregate::splitmix(item) % 24;
        for r in 0..ratings {
            let draw = crate::aggregate::splitmix(item * 1000 + r);
            triples.push((
                format!("t{item}"),
                format!("w{}", draw % 9),
                ["a", "b", "c"][(draw / 9 % 3) as usize].to_string(),
            ));
        }
    }
    crate::table::AnnotationTable::from_triples(
        triples
            .iter()
            .map(|(t, w, l)| (t.as_str(), w.as_str(), l.as_str())),
        &crate::table::LabelSpec::default(),
    )
    .unwrap()
}
