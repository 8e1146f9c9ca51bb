mod analyzer;
mod cvss;
mod feed;
mod images;
mod matcher;
mod versions;
