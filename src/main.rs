fn main() {
    std::process::exit(ipkg::cli::main());
}
