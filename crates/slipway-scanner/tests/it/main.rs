mod analyzer;
mod cvss;
mod feed;
mod matcher;
mod versions;
