mod cvss;
mod feed;
mod versions;
