mod analyzer;
mod cvss;
mod feed;
mod matcher;
mod scan;
mod versions;
