"""Every package `cargo metadata` lists (on stdin) is under a licence compatible with livecount's
Apache-2.0: its SPDX expression must be satisfiable with the licences allowed here. Run by
scripts/check-deps.sh."""
import json, re, sys

# Permissive licences (and the one exception) that Apache-2.0 software may ship.
ALLOWED = {"Apache-2.0", "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib",
           "Unicode-3.0", "Unlicense", "CC0-1.0", "BSL-1.0", "LLVM-exception"}

def satisfiable(expression):
    """An SPDX expression (AND, OR, WITH, parentheses; the old "/" meaning OR) holds with ALLOWED."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression.replace("/", " OR "))
    position = 0
    def peek():
        return tokens[position] if position < len(tokens) else None
    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]
    def primary():
        if peek() == "(":
            take()
            value = either()
            if take() != ")":
                raise ValueError(expression)
            return value
        value = take() in ALLOWED
        if peek() == "WITH":
            take()
            value = take() in ALLOWED and value
        return value
    def both():
        value = primary()
        while peek() == "AND":
            take()
            value = primary() and value
        return value
    def either():
        value = both()
        while peek() == "OR":
            take()
            value = both() or value
        return value
    value = either()
    if position != len(tokens):
        raise ValueError(expression)
    return value

refused = []
for package in json.load(sys.stdin)["packages"]:
    if package["source"] is None:
        continue  # the workspace: Apache-2.0 (Cargo.toml, LICENSE)
    licence = package.get("license")
    if not licence or not satisfiable(licence):
        refused.append(f"{package['name']} {package['version']}: {licence or 'no licence field'}")
if refused:
    sys.exit("check-deps: licences outside the allowed set:\n  " + "\n  ".join(refused))
print("check-deps: every dependency is under an allowed licence")

