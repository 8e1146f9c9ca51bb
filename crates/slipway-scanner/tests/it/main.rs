mod analyzer;
mod versions;
